#include "support/system.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "control/control_client.h"

namespace clonefs::testing {

CommandResult run(const std::string& command) {
  CommandResult result;
  std::string full = "(" + command + ") 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string clonefs_binary() {
  const char* env = std::getenv("CLONEFS_BINARY");
  return env && *env ? env : CLONEFS_BINARY_PATH;
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "false" && std::string(ci) != "0";
}

std::string mount_environment_problem() {
  if (::geteuid() != 0) return "not running as root (loop devices and mounts need it)";
  if (::access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is missing or not accessible";
  if (run("command -v fusermount3").exit_code != 0)
    return "fusermount3 is not installed (package fuse3)";
  if (run("command -v losetup && losetup -f").exit_code != 0)
    return "no free loop device (losetup -f failed)";
  return "";
}

MountedImage::MountedImage(std::string metadata, std::string image, const std::string& extra_flags,
                           const std::string& launcher)
    : metadata_(std::move(metadata)), image_(std::move(image)) {
  result_ = run(launcher + shell_quote(clonefs_binary()) + " mount --metadata " +
                shell_quote(metadata_) + " " + shell_quote(image_) + " " + extra_flags);
  mounted_ = result_.exit_code == 0;
}

MountedImage::~MountedImage() {
  if (!mounted_) return;
  if (unmount().exit_code != 0) kill_daemon();
}

int MountedImage::daemon_pid() const {
  auto pid = clonefs::daemon_pid(image_);
  return pid ? *pid : -1;
}

CommandResult MountedImage::unmount() {
  CommandResult r = run(shell_quote(clonefs_binary()) + " unmount " + shell_quote(image_));
  if (r.exit_code == 0) mounted_ = false;
  return r;
}

int MountedImage::supervisor_pid() const {
  auto status = clonefs::live_status_of(image_);
  return status && status->supervisor ? status->supervisor->pid : -1;
}

namespace {
void kill_and_wait(int pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 200 && ::kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}
}  // namespace

void MountedImage::kill_daemon() {
  int pid = daemon_pid();
  int supervisor = supervisor_pid();
  if (supervisor > 0 && pid > 0) ::kill(pid, SIGSTOP);  // no restart, no SIGTERM handling
  kill_and_wait(supervisor);
  kill_and_wait(pid);
  run("fusermount3 -u -z " + shell_quote(image_));
  mounted_ = false;
}

LoopDevice::LoopDevice(const std::string& file, const std::string& flags) {
  CommandResult r = run("losetup -f --show " + flags + " " + shell_quote(file));
  if (r.exit_code == 0) {
    device_ = r.output.substr(0, r.output.find('\n'));
  }
}

LoopDevice::~LoopDevice() { detach(); }

void LoopDevice::detach() {
  if (device_.empty()) return;
  run("losetup -d " + shell_quote(device_));
  device_.clear();
}

SmallDisk::SmallDisk(std::string path, const std::string& size) : path_(std::move(path)) {
  run("mkdir -p " + shell_quote(path_));
  mounted_ =
      run("mount -t tmpfs -o size=" + size + " clonefs-test " + shell_quote(path_)).exit_code == 0;
}

SmallDisk::~SmallDisk() {
  if (mounted_) run("umount " + shell_quote(path_));
}

FilesystemMount::FilesystemMount(const std::string& device, std::string mountpoint)
    : mountpoint_(std::move(mountpoint)) {
  run("mkdir -p " + shell_quote(mountpoint_));
  mounted_ = run("mount " + shell_quote(device) + " " + shell_quote(mountpoint_)).exit_code == 0;
}

FilesystemMount::~FilesystemMount() { unmount(); }

void FilesystemMount::unmount() {
  if (!mounted_) return;
  if (run("umount " + shell_quote(mountpoint_)).exit_code != 0)
    run("umount -l " + shell_quote(mountpoint_));
  mounted_ = false;
}

}  // namespace clonefs::testing
