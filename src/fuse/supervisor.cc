#include "fuse/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <optional>

#include "control/control_protocol.h"
#include "engine/surviving_regions.h"
#include "fuse/connection_resume.h"
#include "fuse/supervisor_channel.h"
#include "io/safe_files.h"

extern char** environ;

namespace clonefs {
namespace {

using Clock = std::chrono::steady_clock;

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// The serving process: the signals the supervisor reads through its signalfd are libfuse's
// again, and it stops (final commit included) if the supervisor dies.
[[noreturn]] void run_server(const SuperviseOptions& options, const Supervision& supervision,
                             int keep_out_a, int keep_out_b) {
  ::close(keep_out_a);
  ::close(keep_out_b);
  for (int fd : options.supervisor_only_fds) ::close(fd);
  sigset_t set = stop_signals();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != supervision.supervisor_pid) ::_exit(1);  // died before the prctl
  int rc = options.serve(supervision);
  options.logger->flush();
  ::_exit(rc);
}

class Supervisor {
 public:
  explicit Supervisor(const SuperviseOptions& options) : options_(options), log_(*options.logger) {}

  int run() {
    sigset_t set = stop_signals();
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    signals_ = ::signalfd(-1, &set, SFD_CLOEXEC);
    int pair[2];
    if (signals_ < 0 || ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      return fail_start(Status::from_errno(errno, "supervisor setup"));
    }
    channel_ = pair[0];
    supervision_.channel = pair[1];
    // Sized by the first serving process, which knows the clone's geometry.
    supervision_.surviving_regions_fd = ::memfd_create("clonefs-surviving-regions", MFD_CLOEXEC);
    if (supervision_.surviving_regions_fd < 0)
      return fail_start(Status::from_errno(errno, "memfd for the surviving regions"));
    // Best effort: without it a successor knows nothing of its predecessors' open files and
    // leaves passthrough off.
    supervision_.passthrough_ledger_fd = ::memfd_create("clonefs-passthrough", MFD_CLOEXEC);
    supervision_.supervisor_pid = ::getpid();
    image_directory_ = DirectoryEntry::open(options_.image_path);
    if (Status started = start_server(); !started) return fail_start(started);
    log_.info("supervisor {} started serving process {}", ::getpid(), server_);
    int rc = watch();
    end_mount();
    return rc;
  }

 private:
  Status start_server() {
    pid_t pid = ::fork();
    if (pid < 0) return Status::from_errno(errno, "fork of the serving process");
    if (pid == 0) run_server(options_, supervision_, channel_, signals_);
    server_ = pid;
    server_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (server_fd_ < 0) return Status::from_errno(errno, "pidfd_open of the serving process");
    return Status::ok();
  }

  // The mount's start (SuperviseOptions::start_mount) in a child: the supervisor itself must
  // never wait on the mount, and neither may any process whose death it waits for.
  void start_mount() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
      return started(Status::from_errno(errno, "socket for the mount's start"));
    const uint64_t image_size = connection_->image_size;
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(pair[0]);
      ::close(pair[1]);
      return started(Status::from_errno(errno, "fork for the mount's start"));
    }
    if (pid == 0) {
      ::close(pair[0]);
      enter_child();
      (void)send_report(pair[1], options_.start_mount(image_size));
      options_.logger->flush();
      ::_exit(0);
    }
    ::close(pair[1]);
    starter_ = pid;
    starter_channel_ = pair[0];
    starter_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (starter_fd_ < 0) {
      // Cannot watch it: waited for here, as the only way to learn how it went.
      mount_started();
    }
  }

  // In a child the supervisor forks to send requests to the mount: it holds none of the
  // supervisor's descriptors, and dies with it. Holding the connection would keep it open after
  // the supervisor closed it: a request stuck on a mount nobody serves would then never fail.
  void enter_child() {
    for (int fd : {connection_->fuse_fd, channel_, supervision_.channel, signals_, server_fd_,
                   supervision_.destination_witness_fd, supervision_.passthrough_ledger_fd,
                   starter_fd_, starter_channel_, pinner_fd_}) {
      if (fd >= 0) ::close(fd);
    }
    for (int fd : options_.supervisor_only_fds) ::close(fd);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  }

  // SuperviseOptions::pin_size in a child. Asked again while one runs: another follows it (the
  // running one may have truncated before the write-back refused since). Never waited for: its
  // truncate waits for the fsync that reported the refusal, and for the write-backs in flight.
  void pin_size() {
    if (!options_.pin_size || !connection_) return;
    if (pinner_ > 0) {
      pin_again_ = true;
      return;
    }
    const uint64_t image_size = connection_->image_size;
    pid_t pid = ::fork();
    if (pid < 0) {
      log_.warn("cannot put back the size of {} after a write past its end: fork: {}",
                options_.image_path, std::strerror(errno));
      return;
    }
    if (pid == 0) {
      enter_child();
      Status pinned = options_.pin_size(image_size);
      if (!pinned) options_.logger->warn("after a write past the end: {}", pinned.message());
      options_.logger->flush();
      ::_exit(pinned ? 0 : 1);
    }
    pinner_ = pid;
    pinner_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pinner_fd_ < 0) {
      // Cannot watch it: left to exit alone (a zombie until the mount ends).
      log_.warn("pidfd_open of {}: {}", pid, std::strerror(errno));
      pinner_ = 0;
    }
  }

  void size_pinned() {
    while (::waitpid(pinner_, nullptr, 0) < 0 && errno == EINTR) {
    }
    ::close(pinner_fd_);
    pinner_fd_ = -1;
    pinner_ = 0;
    if (pin_again_) {
      pin_again_ = false;
      pin_size();
    }
  }

  void mount_started() {
    auto message = receive_message(starter_channel_);
    int wait_status = 0;
    while (::waitpid(starter_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    if (message && !message->has_value()) message = receive_message(starter_channel_);
    ::close(starter_channel_);
    if (starter_fd_ >= 0) ::close(starter_fd_);
    starter_channel_ = starter_fd_ = -1;
    starter_ = 0;
    const ReportMessage* report =
        message && message->has_value() ? std::get_if<ReportMessage>(&**message) : nullptr;
    started(report != nullptr ? report->report
                              : Status::error(EIO, "the mount's start ended without a word (" +
                                                       describe_exit(wait_status) + ")"));
  }

  // The mount is ready, or ends; the first serving process, if it still serves, learns which
  // (a successor started before it had set up nothing, and waits for no word).
  void started(const Status& how) {
    if (!how) log_.error("the mount of {} could not start: {}", options_.image_path, how.message());
    if (!reported_) report_once(how);
    if (server_ > 0 && supervision_.restarts == 0) (void)send_report(channel_, how);
    if (!how && server_ > 0) {
      stopping_ = true;
      ::kill(server_, SIGTERM);
    }
  }

  int fail_start(const Status& why) {
    log_.error("{}", why.message());
    report_once(why);
    return 1;
  }

  void report_once(const Status& report) {
    if (reported_) return;
    reported_ = true;
    ready_ = report.is_ok();
    options_.report(report);
  }

  // Until the mount ends; returns the mount's exit code.
  int watch() {
    for (;;) {
      pollfd fds[5] = {{server_fd_, POLLIN, 0},
                       {channel_, POLLIN, 0},
                       {signals_, POLLIN, 0},
                       {starter_fd_, POLLIN, 0},  // ignored while -1
                       {pinner_fd_, POLLIN, 0}};
      if (::poll(fds, 5, -1) < 0) {
        if (errno == EINTR) continue;
        log_.error("supervisor poll: {}", std::strerror(errno));
        return 1;
      }
      if (fds[1].revents & POLLIN) read_messages();
      if (fds[2].revents & POLLIN) forward_stop_signal();
      if (fds[3].revents & POLLIN) mount_started();
      if (fds[4].revents & POLLIN) size_pinned();
      if (fds[0].revents & POLLIN) {
        read_messages();  // what it sent before dying
        std::optional<int> rc = server_exited();
        if (rc) return *rc;
      }
    }
  }

  void read_messages() {
    for (;;) {
      auto message = receive_message(channel_);
      if (!message) {
        log_.error("supervisor: {}", message.status().message());
        return;
      }
      if (!message->has_value()) return;
      if (auto* c = std::get_if<ConnectionMessage>(&**message)) {
        if (connection_) {
          ::close(c->connection.fuse_fd);
          continue;
        }
        connection_ = std::move(c->connection);
        supervision_.connection = connection_;
        if (options_.start_mount) start_mount();
      } else if (std::holds_alternative<SizeRefusedMessage>(**message)) {
        pin_size();
      } else if (auto* w = std::get_if<WitnessMessage>(&**message)) {
        if (supervision_.destination_witness_fd >= 0)
          ::close(w->fd);
        else
          supervision_.destination_witness_fd = w->fd;
      } else if (auto* r = std::get_if<ReportMessage>(&**message)) {
        if (!reported_ && (!r->report || !options_.start_mount)) {
          report_once(r->report);
        } else if (!r->report) {
          log_.error("serving process {} could not start: {}", server_, r->report.message());
        } else if (supervision_.restarts > 0) {
          auto pause =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - died_at_);
          log_.info("serving process {} is serving again, {} ms after its predecessor died",
                    server_, pause.count());
        }
      }
    }
  }

  void forward_stop_signal() {
    signalfd_siginfo info{};
    if (::read(signals_, &info, sizeof info) != sizeof info) return;
    log_.info("supervisor: signal {} received: stopping serving process {}", info.ssi_signo,
              server_);
    stopping_ = true;
    if (server_ > 0) ::kill(server_, SIGTERM);
  }

  // After the serving process exited: nullopt when a successor now serves, else the exit code.
  std::optional<int> server_exited() {
    int wait_status = 0;
    while (::waitpid(server_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    died_at_ = Clock::now();
    ::close(server_fd_);
    server_fd_ = -1;
    const pid_t dead = server_;
    server_ = 0;
    const std::string how = describe_exit(wait_status);
    const bool clean = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
    // Killed before the mount was ready but after the connection was handed over (its start
    // may be waiting for an answer): restarted as any other.
    const bool handed_over = connection_ && !clean && !stopping_ && WIFSIGNALED(wait_status);
    if (!reported_ && !handed_over) {
      report_once(Status::error(EIO, "the serving process for " + options_.image_path +
                                         " exited before the mount was ready (" + how + ")"));
      return 1;
    }
    if (reported_ && !ready_) return 1;
    if (clean || stopping_) {
      log_.info("serving process {} ended ({}): the mount ends", dead, how);
      return clean ? 0 : 1;
    }
    if (!connection_ || !connection_alive(connection_->fuse_fd)) {
      log_.error("serving process {} died ({}) and the connection is gone: the mount ends", dead,
                 how);
      return 1;
    }
    while (!restarts_.empty() && died_at_ - restarts_.front() > options_.restart_window)
      restarts_.pop_front();
    if (restarts_.size() >= options_.restart_limit) {
      log_.error(
          "serving process {} died ({}) after {} restarts within {} s: a crash loop; the mount "
          "ends (limit: --restart-limit {})",
          dead, how, restarts_.size(), options_.restart_window.count(), options_.restart_limit);
      return 1;
    }
    if (Status resent = notify_resend(connection_->fuse_fd); !resent) {
      log_.error(
          "serving process {} died ({}), and the requests it held cannot be queued again "
          "({}; Linux 6.9 or later is needed): the mount ends",
          dead, how, resent.message());
      return 1;
    }
    if (Status confirmed = confirm_destination_syncs(); !confirmed) {
      log_.error("cannot restart: {}: the mount ends", confirmed.message());
      return 1;
    }
    restarts_.push_back(died_at_);
    ++supervision_.restarts;
    supervision_.last_restart = "serving process " + std::to_string(dead) + " died (" + how + ")";
    if (Status started = start_server(); !started) {
      log_.error("cannot restart: {}: the mount ends", started.message());
      return 1;
    }
    log_.warn("{}: restart {}, serving process {}", supervision_.last_restart,
              supervision_.restarts, server_);
    return std::nullopt;
  }

  // Before a successor can adopt what the dead process made valid (engine/surviving_regions.h):
  // every write-back error since the mount started, whoever's descriptor consumed it, through the
  // description the first serving process opened before it served. Here, in the one process
  // whose death ends the mount: a successor killed inside this sync could consume the error in
  // turn. An error spoils the record, and the successor starts in fail mode; only a record that
  // cannot be spoiled stops the restart.
  Status confirm_destination_syncs() {
    const int witness = supervision_.destination_witness_fd;
    Status synced = witness < 0 ? Status::error(EIO,
                                                "no description of the destination was held "
                                                "since the mount started")
                    : ::fdatasync(witness) == 0
                        ? Status::ok()
                        : Status::from_errno(errno, "a write-back to the destination failed");
    if (synced) return Status::ok();
    log_.error(
        "{} under the dead serving process: the next one fails every I/O until the clone is "
        "remounted",
        synced.message());
    return SurvivingRegions::spoil(supervision_.surviving_regions_fd);
  }

  // The connection, if still mounted, is closed first (aborted: nobody serves it any more), then
  // lazily unmounted; an IMAGE the mount created is removed.
  void end_mount() {
    if (!connection_) return;
    bool alive = connection_alive(connection_->fuse_fd);
    ::close(connection_->fuse_fd);
    if (alive) {
      Status gone = lazy_unmount(unmount_target());
      if (gone)
        log_.info("unmounted {}", options_.image_path);
      else
        log_.warn("{}", gone.message());
    }
    if (connection_->created_image) remove_created();
  }

  // As root, IMAGE reached through its directory opened at the start (/proc/self/fd/N/NAME): a
  // directory renamed since, and a symlink put in its place, do not redirect the unmount.
  std::string unmount_target() const {
    if (!image_directory_ || ::geteuid() != 0) return options_.image_path;
    return "/proc/self/fd/" + std::to_string(image_directory_->directory()) + "/" +
           image_directory_->name();
  }

  static Status lazy_unmount(const std::string& image) {
    if (::geteuid() == 0) {
      if (::umount2(image.c_str(), MNT_DETACH) == 0 || errno == EINVAL) return Status::ok();
      return Status::from_errno(errno, "unmount " + image);
    }
    const char* argv[] = {"fusermount3", "-u", "-z", image.c_str(), nullptr};
    pid_t pid;
    if (int err = ::posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv),
                                 environ)) {
      return Status::from_errno(err, "run fusermount3 to unmount " + image);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return Status::error(EIO, "fusermount3 -u -z " + image + " failed");
    return Status::ok();
  }

  // Only the very file the first serving process created, through the directory opened before
  // it was created: a name another user swapped since (IMAGE's directory renamed and a symlink
  // put in its place) is left alone.
  void remove_created() {
    if (!image_directory_) {
      log_.warn("cannot remove {}, which the mount had created: {}", options_.image_path,
                image_directory_.status().message());
      return;
    }
    Status removed =
        image_directory_->remove_if_same(connection_->image_device, connection_->image_inode);
    if (removed)
      log_.info("removed {} (the mount had created it)", options_.image_path);
    else
      log_.warn("cannot remove {}, which the mount had created: {}", options_.image_path,
                removed.message());
  }

  const SuperviseOptions& options_;
  spdlog::logger& log_;
  int signals_ = -1;
  int channel_ = -1;
  pid_t server_ = 0;
  int server_fd_ = -1;
  pid_t starter_ = 0;  // the mount's start (start_mount), while it runs
  int starter_fd_ = -1;
  int starter_channel_ = -1;
  pid_t pinner_ = 0;  // SuperviseOptions::pin_size, while it runs
  int pinner_fd_ = -1;
  bool pin_again_ = false;
  Supervision supervision_;
  std::optional<HeldConnection> connection_;
  // IMAGE's directory, opened before any serving process could create IMAGE in it.
  Result<DirectoryEntry> image_directory_ = Status::error(ENOENT, "not opened");
  bool reported_ = false;
  bool ready_ = false;
  bool stopping_ = false;
  Clock::time_point died_at_;
  std::deque<Clock::time_point> restarts_;
};

}  // namespace

std::string describe_exit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* name = ::sigdescr_np(sig);
    return "signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exit code " + std::to_string(WEXITSTATUS(wait_status));
}

int supervise(const SuperviseOptions& options) { return Supervisor(options).run(); }

}  // namespace clonefs
