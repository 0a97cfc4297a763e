// Running the real clonefs binary and system tools from tests, and RAII owners for what they
// start (FUSE mounts, loop devices, filesystem mounts), released even when a test fails.
#pragma once

#include <string>

namespace clonefs::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` through /bin/sh, capturing stdout and stderr.
CommandResult run(const std::string& command);
// Single-quotes `arg` for the shell.
std::string shell_quote(const std::string& arg);
// The clonefs binary under test.
std::string clonefs_binary();

// Why the real-mount tests cannot run here ("" if they can): not root, no /dev/fuse, no
// fusermount3 or losetup.
std::string mount_environment_problem();
bool running_in_ci();

// A `clonefs mount`ed image, unmounted at scope end (clonefs unmount, then fusermount3 -u and
// a SIGKILL of the daemon by PID as fallbacks).
class MountedImage {
 public:
  // `launcher` runs before `clonefs mount` in the same shell (e.g. joining a cgroup), so the
  // daemon inherits what it sets up.
  MountedImage(std::string metadata, std::string image, const std::string& extra_flags = "",
               const std::string& launcher = "");
  ~MountedImage();
  MountedImage(const MountedImage&) = delete;
  MountedImage& operator=(const MountedImage&) = delete;
  bool ok() const { return result_.exit_code == 0; }
  const CommandResult& result() const { return result_; }
  const std::string& image() const { return image_; }
  // The serving process's PID, read through the control channel.
  int daemon_pid() const;
  // The supervisor's PID (fuse/supervisor.h), -1 if none (--restart-limit 0) or unreadable.
  int supervisor_pid() const;
  // Unmounts now (clonefs unmount); returns its result.
  CommandResult unmount();
  // Kills the daemon with SIGKILL — the supervisor and its serving process at once (stopped
  // first, so that it gets no chance to commit) — and clears the dead mount (fusermount3 -u).
  void kill_daemon();

 private:
  std::string metadata_;
  std::string image_;
  CommandResult result_;
  bool mounted_ = false;
};

class LoopDevice {
 public:
  explicit LoopDevice(const std::string& file, const std::string& flags = "");
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  const std::string& device() const { return device_; }
  bool ok() const { return !device_.empty(); }
  void detach();

 private:
  std::string device_;
};

// A tmpfs of `size` at `path` (a small disk to fill), unmounted at scope end.
class SmallDisk {
 public:
  SmallDisk(std::string path, const std::string& size);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool ok() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

class FilesystemMount {
 public:
  FilesystemMount(const std::string& device, std::string mountpoint);
  ~FilesystemMount();
  FilesystemMount(const FilesystemMount&) = delete;
  FilesystemMount& operator=(const FilesystemMount&) = delete;
  bool ok() const { return mounted_; }
  void unmount();

 private:
  std::string mountpoint_;
  bool mounted_ = false;
};

}  // namespace clonefs::testing

// Skips outside CI when the machine cannot mount (saying why); fails in CI.
#define CLONEFS_REQUIRE_MOUNT_ENVIRONMENT()                                                       \
  do {                                                                                            \
    std::string problem_ = ::clonefs::testing::mount_environment_problem();                       \
    if (!problem_.empty()) {                                                                      \
      if (::clonefs::testing::running_in_ci()) FAIL() << "CI must run mount tests: " << problem_; \
      GTEST_SKIP() << "needs real mounts: " << problem_;                                          \
    }                                                                                             \
  } while (0)
