// clonefs unmount: commit, unmount, and wait for the daemon to exit, so the metadata is final
// when the command returns.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "app.h"
#include "control/control_client.h"
#include "control/control_protocol.h"
#include "io/file_holders.h"
#include "io/safe_files.h"
#include "io/unique_fd.h"

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
    return Status::error(EBUSY,
                         image +
                             " is busy, but no process or loop device holding it was found "
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

bool hydration_paused(const CloneStatus& status) {
  if (!status.hydration) return true;  // nothing to pause
  return status.hydration->controls.paused;
}

// "metadata is ro: <reason>", from a live status.
std::string mode_sentence(const CloneStatus& status) {
  return "metadata is " + status.metadata_mode + ": " + status.metadata_mode_reason;
}

// A killed daemon cannot remove the empty IMAGE file its mount created; the mark it left on the
// file says it was clonefs's, not the user's.
// The file checked is the file removed (io/safe_files.h): never a symlink, nor a name swapped
// between the check and the removal.
void remove_created_image(const std::string& image) {
  auto entry = DirectoryEntry::open(image);
  if (!entry) return;
  auto file = entry->open_existing(O_RDONLY | O_NONBLOCK | O_NOCTTY);
  struct stat st {};
  char mark[8];
  if (!file || ::fstat(file->get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0 ||
      st.st_nlink != 1)
    return;
  if (::fgetxattr(file->get(), kCreatedImageXattr, mark, sizeof mark) <= 0) return;
  if (entry->remove_if_same(st.st_dev, st.st_ino))
    std::printf("removed %s (the mount had created it)\n", image.c_str());
}

// A descriptor of the daemon process, taken while it surely runs (before the unmount), so the
// wait below cannot mistake a later process that reused its pid for it.
Result<UniqueFd> open_daemon(int pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0)
    return Status::from_errno(errno, "pidfd_open of the daemon (pid " + std::to_string(pid) + ")");
  return UniqueFd(fd);
}

// The pidfd polls readable once the daemon has exited (a zombie's final commit is done too).
Status wait_for_exit(const UniqueFd& daemon, int pid, const std::string& image) {
  pollfd exited{daemon.get(), POLLIN, 0};
  int ready = ::poll(&exited, 1, 3000);
  if (ready == 0) {
    warn("waiting for the daemon (pid " + std::to_string(pid) + ") to finish its final commit...");
    ready = ::poll(&exited, 1, static_cast<int>(std::chrono::milliseconds(kExitWait).count()));
  }
  if (ready < 0)
    return Status::from_errno(errno, "wait for the daemon (pid " + std::to_string(pid) + ")");
  if (ready == 0) {
    return Status::error(ETIMEDOUT, "the daemon for " + image + " (pid " + std::to_string(pid) +
                                        ") has not exited after its unmount; see its log");
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
  auto daemon = open_daemon(*pid);
  if (!daemon) return fail(daemon.status());
  // Hydration is paused first, so that the commit below is the last one that has anything to
  // commit: its result, read here, is the final commit's (the daemon's own exit status reaches
  // nobody). If the unmount is refused, hydration is resumed as it was.
  auto before = live_status_of(args.image);
  bool was_paused = before && hydration_paused(*before);
  // A supervised mount ends when its supervisor has unmounted and cleaned up after the serving
  // process's final commit: waited for too.
  std::optional<UniqueFd> supervisor;
  if (before && before->supervisor) {
    auto opened = open_daemon(before->supervisor->pid);
    if (!opened) return fail(opened.status());
    supervisor = std::move(*opened);
  }
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
  if (Status exited = wait_for_exit(*daemon, *pid, args.image); !exited) return fail(exited);
  if (supervisor) {
    if (Status exited = wait_for_exit(*supervisor, before->supervisor->pid, args.image); !exited)
      return fail(exited);
  }
  if (::access(args.image.c_str(), F_OK) != 0 && errno == ENOENT) {
    std::printf("removed %s (the mount had created it)\n", args.image.c_str());
  }
  if (rc != 0) {
    warn("unmounted " + args.image +
         ", but writes acknowledged since the last good commit may be lost");
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
