// clonefs unmount: commit, unmount, and wait for the daemon to exit, so the metadata is final
// when the command returns.
#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "app.h"
#include "control/control_client.h"
#include "control/control_protocol.h"
#include "io/file_holders.h"

extern char** environ;

namespace clonefs::cli {
namespace {

constexpr auto kExitWait = std::chrono::minutes(10);

struct UnmountArgs {
  std::string image;
};

// Names what holds IMAGE, as fuser and losetup -j would: a guess sends the user after a loop
// device while QEMU holds the image.
Status busy_error(const std::string& image) {
  std::string holders = describe_holders(image);
  if (holders.empty()) {
    return Status::error(EBUSY, image + " is busy, but no process or loop device holding it was found "
                                        "(a process in another PID namespace, or a mount on top of it?)");
  }
  return Status::error(EBUSY, image + " is busy: " + holders + "; close or detach it first");
}

// Root unmounts directly; others go through the setuid helper, as libfuse does.
Status unmount_path(const std::string& image, bool lazy) {
  if (::geteuid() == 0) {
    if (::umount2(image.c_str(), lazy ? MNT_DETACH : 0) == 0) return Status::ok();
    if (errno == EBUSY) return busy_error(image);
    return Status::from_errno(errno, "unmount " + image);
  }
  std::vector<const char*> argv = {"fusermount3", "-u"};
  if (lazy) argv.push_back("-z");
  argv.push_back(image.c_str());
  argv.push_back(nullptr);
  pid_t pid;
  if (int err = ::posix_spawnp(&pid, "fusermount3", nullptr, nullptr,
                               const_cast<char**>(argv.data()), environ)) {
    return Status::from_errno(err, "run fusermount3 to unmount " + image);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (std::string holders = describe_holders(image); !holders.empty()) {
      return Status::error(EBUSY, "fusermount3 -u " + image + " failed: it is " + holders +
                                      "; close or detach it first");
    }
    return Status::error(EIO, "fusermount3 -u " + image + " failed (see its message above)");
  }
  return Status::ok();
}

bool hydration_paused(const nlohmann::json& status) {
  auto hydration = status.find("hydration");
  if (hydration == status.end() || !hydration->is_object()) return true;  // nothing to pause
  return hydration->value("paused", false);
}

// "metadata is ro: <reason>", from a live status.
std::string mode_sentence(const nlohmann::json& status) {
  return "metadata is " + status.value("metadata_mode", std::string("?")) + ": " +
         status.value("metadata_mode_reason", std::string());
}

// A killed daemon cannot remove the empty IMAGE file its mount created; the mark it left on the
// file says it was clonefs's, not the user's.
void remove_created_image(const std::string& image) {
  struct stat st {};
  char mark[8];
  if (::stat(image.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0) return;
  if (::getxattr(image.c_str(), kCreatedImageXattr, mark, sizeof mark) <= 0) return;
  if (::unlink(image.c_str()) == 0) std::printf("removed %s (the mount had created it)\n", image.c_str());
}

bool process_alive(int pid) {
  if (::kill(pid, 0) != 0) return errno == EPERM;
  // An exited daemon whose reaper is slow is a zombie: its final commit is done.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

Status wait_for_exit(int pid, const std::string& image) {
  auto start = std::chrono::steady_clock::now();
  bool told = false;
  while (process_alive(pid)) {
    auto waited = std::chrono::steady_clock::now() - start;
    if (waited > kExitWait) {
      return Status::error(ETIMEDOUT, "the daemon for " + image + " (pid " + std::to_string(pid) +
                                          ") has not exited after its unmount; see its log");
    }
    if (!told && waited > std::chrono::seconds(3)) {
      warn("waiting for the daemon (pid " + std::to_string(pid) +
           ") to finish its final commit...");
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::ok();
}

int run_unmount(const UnmountArgs& args) {
  auto pid = daemon_pid(args.image);
  if (!pid) {
    if (pid.status().code() != ENOTCONN) return fail(pid.status());
    // The daemon died; the metadata is as of its last commit. Clear the dead mount.
    if (Status gone = unmount_path(args.image, true); !gone) return fail(gone);
    warn("the daemon serving " + args.image +
         " was already gone; removed its dead mount (the metadata is as "
         "of its last commit)");
    remove_created_image(args.image);
    return 0;
  }
  // Hydration is paused first, so that the commit below is the last one that has anything to
  // commit: its result, read here, is the final commit's (the daemon's own exit status reaches
  // nobody). If the unmount is refused, hydration is resumed as it was.
  auto before = live_status_of(args.image);
  bool was_paused = before && hydration_paused(*before);
  // "hold" is not saved for the next mount; a daemon older than it only knows "pause".
  if (!was_paused && !send_hydrate_command(args.image, "hold")) {
    (void)send_hydrate_command(args.image, "pause");
  }
  int rc = 0;
  int fd = ::open(args.image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && ::fsync(fd) != 0) {
    int err = errno;
    auto after = live_status_of(args.image);
    std::string why = after ? mode_sentence(*after) : std::string(std::strerror(err));
    warn(args.image + ": the final commit failed: " + why);
    rc = kExitError;
  }
  if (fd >= 0) ::close(fd);
  if (Status unmounted = unmount_path(args.image, false); !unmounted) {
    if (!was_paused) (void)send_hydrate_command(args.image, "resume");
    return fail(unmounted);
  }
  if (Status exited = wait_for_exit(*pid, args.image); !exited) return fail(exited);
  if (::access(args.image.c_str(), F_OK) != 0 && errno == ENOENT) {
    std::printf("removed %s (the mount had created it)\n", args.image.c_str());
  }
  if (rc != 0) {
    warn("unmounted " + args.image + ", but writes acknowledged since the last good commit may be lost");
  }
  return rc;
}

}  // namespace

Command add_unmount_command(CLI::App& root) {
  auto args = std::make_shared<UnmountArgs>();
  CLI::App* app = root.add_subcommand(
      "unmount",
      "Commit, unmount IMAGE and wait until its daemon has made the final commit and exited.");
  app->add_option("IMAGE", args->image, "The mounted image")->required();
  return {app, [args] { return run_unmount(*args); }};
}

}  // namespace clonefs::cli
