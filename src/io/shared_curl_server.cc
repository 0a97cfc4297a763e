#include "io/shared_curl_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "io/fnv1a.h"
#include "io/source_uri.h"

extern char** environ;

namespace clonefs {
namespace {

using std::chrono::milliseconds;

constexpr const char* kSocketName = "nbd.sock";
constexpr const char* kPidName = "nbdkit.pid";
constexpr const char* kLogName = "nbdkit.log";
constexpr const char* kLockName = "lock";
constexpr const char* kLeaseName = "lease";
constexpr const char* kDateName = "checked-at";
// How often a hydration read waiting for a turn looks again (a fetch takes milliseconds).
constexpr auto kTurnPoll = std::chrono::milliseconds(2);
constexpr const char* kTurnNames[SharedCurlServer::kHydrationTurns] = {"hydrating-0",
                                                                       "hydrating-1"};
// Every file of a server's directory.
constexpr const char* kFiles[] = {kSocketName, kPidName,  kLogName,      kLockName,
                                  kLeaseName,  kDateName, kTurnNames[0], kTurnNames[1]};
// Where nbdkit finds, after exec, the parameters memfd, its directory and the lease file.
constexpr int kParametersFd = 3;
constexpr int kDirectoryFd = 4;
constexpr int kLeaseFd = 5;
constexpr milliseconds kStartTimeout{5000};
constexpr milliseconds kFirstBackoff{200};
constexpr milliseconds kMaxBackoff{8000};
constexpr size_t kKeptLog = 16 << 10;
// Run by nbdkit's exitwhen filter: 88 (exit once the last client is gone) when an exclusive lock
// on the lease can be taken, i.e. no clone holds one. The lock is let go at once: a clone that
// arrives next waits for it only as long as the script runs.
constexpr const char* kExitScript = "flock -n -x 5 || exit 0; flock -u 5; exit 88";

std::string hex(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, v);
  return text;
}

// 128 bits of the full URL, headers and CA file (two FNV-1a passes, the second salted): names its
// server's directory.
std::string url_key(const std::string& url) {
  Fnv1a64 first, second;
  first.add(std::as_bytes(std::span(url.data(), url.size())));
  second.add_u64(0x636c6f6e65667321ULL);
  second.add(std::as_bytes(std::span(url.data(), url.size())));
  return hex(first.value()) + hex(second.value());
}

// A directory that must be this user's alone: made 0700 if missing, opened without following a
// link, refused unless owned by this user with no access for anyone else.
Result<UniqueFd> private_directory_at(int parent, const std::string& name,
                                      const std::string& shown) {
  if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::from_errno(errno, "cannot make directory " + shown);
  UniqueFd fd(::openat(parent, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return Status::from_errno(errno, "cannot open directory " + shown);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::from_errno(errno, "stat " + shown);
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return Status::error(EPERM, "directory " + shown + " for shared sources is not this user's " +
                                    "private directory (owner " + std::to_string(st.st_uid) +
                                    ", mode " + std::to_string(st.st_mode & 0777) +
                                    "): refusing to share a source through it");
  }
  return fd;
}

// The user's directory of shared servers (io/shared_curl_server.h says where and why).
Result<UniqueFd> servers_directory() {
  std::string parent = "/tmp", name = "clonefs-sources-" + std::to_string(::geteuid());
  if (::geteuid() == 0) {
    parent = "/run";
    name = "clonefs-sources";
  } else if (const char* runtime = std::getenv("XDG_RUNTIME_DIR");
             runtime != nullptr && *runtime == '/') {
    parent = runtime;
    name = "clonefs-sources";
  }
  UniqueFd parent_fd(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (parent_fd.get() < 0) return Status::from_errno(errno, "cannot open " + parent);
  return private_directory_at(parent_fd.get(), name, parent + "/" + name);
}

// A file of the server's directory, which only this user can reach: created 0600 if missing.
Result<UniqueFd> open_in(int directory, const char* name, int flags) {
  UniqueFd fd(::openat(directory, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Status::from_errno(errno, std::string("cannot open ") + name);
  return fd;
}

std::string read_all(int fd) {
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  return text;
}

std::string socket_path(int directory_fd) {
  return "/proc/self/fd/" + std::to_string(directory_fd) + "/" + kSocketName;
}

// Whether a server answers on the socket: it accepts and sends its NBD greeting. One that has
// begun to exit closes new connections at once; one merely slow (a busy host) is given 5 s and
// then taken as alive rather than doubled.
bool answers(int directory_fd) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path(directory_fd).copy(address.sun_path, sizeof address.sun_path - 1);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0 ||
      ::connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return false;
  }
  timeval timeout{5, 0};
  ::setsockopt(probe.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char greeting[18];
  const ssize_t n = ::recv(probe.get(), greeting, sizeof greeting, MSG_WAITALL);
  if (n == static_cast<ssize_t>(sizeof greeting)) return true;
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// The directories of servers for URLs no clone uses any more (no server answers, nobody holds the
// lock or a lease): removed with their files, so that the user's directory does not fill up.
void remove_unused_directories(int base, const std::string& keep) {
  DIR* dir = ::fdopendir(::openat(base, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir == nullptr) return;
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() != 32 || name == keep) continue;
    UniqueFd fd(::openat(base, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid() ||
        (st.st_mode & 077) != 0) {
      continue;
    }
    UniqueFd lock(::openat(fd.get(), kLockName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    UniqueFd lease(::openat(fd.get(), kLeaseName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (lock.get() < 0 || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (lease.get() >= 0 && ::flock(lease.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (answers(fd.get())) continue;
    for (const char* file : kFiles) ::unlinkat(fd.get(), file, 0);
    ::unlinkat(base, name.c_str(), AT_REMOVEDIR);  // fails, harmlessly, if anything else is in it
  }
  ::closedir(dir);
}

}  // namespace

Result<std::unique_ptr<SharedCurlServer>> SharedCurlServer::start(const std::string& url,
                                                                  HttpRequest request) {
  std::unique_ptr<SharedCurlServer> server(new SharedCurlServer(url, std::move(request)));
  CLONEFS_RETURN_IF_ERROR(server->open_directory());
  CLONEFS_RETURN_IF_ERROR(server->join());
  server->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  if (server->stop_fd_.get() < 0) return Status::from_errno(errno, "eventfd");
  server->watcher_ = std::thread([s = server.get()] { s->watch(); });
  return server;
}

// The server's directory (made if missing), and its lock file. Opened again, on the same
// descriptor number (the NBD URI names it), if it was removed as unused meanwhile.
Status SharedCurlServer::open_directory() {
  auto base = servers_directory();
  if (!base) return base.status();
  std::string identity = url_;
  for (const std::string& header : request_.headers) identity += '\0' + header;
  identity += std::string("\0cainfo=", 8) + request_.ca_file;
  const std::string key = url_key(identity);
  remove_unused_directories(base->get(), key);
  auto directory = private_directory_at(base->get(), key, "of a shared source");
  if (!directory) return directory.status();
  if (directory_fd_.get() < 0) {
    directory_fd_ = std::move(*directory);
  } else if (::dup3(directory->get(), directory_fd_.get(), O_CLOEXEC) < 0) {
    return Status::from_errno(errno, "dup3");
  }
  auto lock = open_in(directory_fd_.get(), kLockName, O_RDONLY | O_CREAT);
  if (!lock) return lock.status();
  lock_fd_ = std::move(*lock);
  return Status::ok();
}

// A lease on the current server's lease file (each server has its own: one that saw the file
// change keeps serving its clients until they go, and must not be held by the newer one's). Taken
// before the first look at the server: a probe's disconnection has the server look for leases.
Status SharedCurlServer::hold_current_lease() {
  auto lease = open_in(directory_fd_.get(), kLeaseName, O_RDONLY | O_CREAT);
  if (!lease) return lease.status();
  struct stat now {
  }, held{};
  if (lease_fd_.get() >= 0 && ::fstat(lease->get(), &now) == 0 &&
      ::fstat(lease_fd_.get(), &held) == 0 && now.st_ino == held.st_ino) {
    return Status::ok();
  }
  if (::flock(lease->get(), LOCK_SH) != 0)
    return Status::from_errno(errno, "lease on the shared source's server");
  lease_fd_ = std::move(*lease);  // the previous lease goes with its descriptor
  return Status::ok();
}

Status SharedCurlServer::join() {
  for (int attempt = 0;; ++attempt) {
    if (::flock(lock_fd_.get(), LOCK_EX) != 0)
      return Status::from_errno(errno, "lock of the shared source's server");
    struct stat st {};
    if (::fstat(directory_fd_.get(), &st) == 0 && st.st_nlink > 0) break;
    // Removed as unused by another clone between the opening and the lock.
    ::flock(lock_fd_.get(), LOCK_UN);
    if (attempt == 3) return Status::error(EAGAIN, "the shared source's directory keeps vanishing");
    CLONEFS_RETURN_IF_ERROR(open_directory());
  }
  Status joined = join_locked();
  ::flock(lock_fd_.get(), LOCK_UN);
  return joined;
}

// Under the lock: the running server if it answers and has not seen the file change, else a new
// one. Then its PID (to watch) and its log (to read).
Status SharedCurlServer::join_locked() {
  CLONEFS_RETURN_IF_ERROR(hold_current_lease());
  if (!joinable()) CLONEFS_RETURN_IF_ERROR(spawn());
  auto pid_file = open_in(directory_fd_.get(), kPidName, O_RDONLY);
  if (!pid_file) return pid_file.status().with_context("the shared source's server");
  const pid_t pid = static_cast<pid_t>(std::strtol(read_all(pid_file->get()).c_str(), nullptr, 10));
  UniqueFd pidfd(pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1);
  if (pidfd.get() < 0) return Status::error(ESRCH, "the shared source's server is gone");
  auto log = open_in(directory_fd_.get(), kLogName, O_RDONLY);
  if (!log) return log.status();
  std::lock_guard lock(mu_);
  pid_ = pid;
  pidfd_ = std::move(pidfd);
  log_fd_ = std::move(*log);
  log_tail_.clear();
  read_log_locked();
  return Status::ok();
}

bool SharedCurlServer::joinable() {
  if (!answers(directory_fd_.get())) return false;
  auto log = open_in(directory_fd_.get(), kLogName, O_RDONLY);
  auto date = open_in(directory_fd_.get(), kDateName, O_RDONLY);
  if (!log || !date) return false;
  if (read_all(log->get()).find(nbdkit_launch::kPreconditionFailed) != std::string::npos)
    return false;
  std::lock_guard lock(mu_);
  if (checked_at_.empty()) checked_at_ = read_all(date->get());
  return true;
}

// A new server, in a session of its own (double-forked: no clone is its parent), on a fresh
// socket, log and PID file; an old one that still serves clients keeps its own (unlinked).
Status SharedCurlServer::spawn() {
  auto filter = nbdkit_launch::parameters_filter();
  if (!filter) return filter.status();
  const std::string program = nbdkit_launch::find_program("nbdkit");
  if (program.empty())
    return Status::error(ENOENT, "nbdkit not found in PATH (install the nbdkit package)");
  const int dir = directory_fd_.get();
  for (const char* name : {kSocketName, kPidName, kLogName, kLeaseName, kDateName})
    ::unlinkat(dir, name, 0);
  const std::string date = nbdkit_launch::http_date_now();
  auto date_file = open_in(dir, kDateName, O_WRONLY | O_CREAT | O_EXCL);
  if (!date_file) return date_file.status();
  if (::write(date_file->get(), date.data(), date.size()) != static_cast<ssize_t>(date.size()))
    return Status::from_errno(errno, "write of the shared server's date");
  {
    std::lock_guard lock(mu_);
    if (checked_at_.empty()) checked_at_ = date;
  }
  UniqueFd parameters(::memfd_create("clonefs-http-parameters", MFD_CLOEXEC));
  if (parameters.get() < 0) return Status::from_errno(errno, "memfd for nbdkit's parameters");
  const std::string text = nbdkit_launch::curl_parameters(url_, request_, date);
  if (::write(parameters.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return Status::from_errno(errno, "write of nbdkit's parameters");
  auto log = open_in(dir, kLogName, O_WRONLY | O_CREAT | O_EXCL | O_APPEND);
  if (!log) return log.status();
  auto lease = open_in(dir, kLeaseName, O_RDONLY | O_CREAT | O_EXCL);
  if (!lease) return lease.status();
  // This process's lease on it, taken before nbdkit first looks (through a descriptor of its own:
  // a lock belongs to the open file, and nbdkit's script locks its copy).
  CLONEFS_RETURN_IF_ERROR(hold_current_lease());
  // Everything on nbdkit's command line is public: no path, no URL.
  const std::string in_dir = "/proc/self/fd/" + std::to_string(kDirectoryFd) + "/";
  std::vector<std::string> args = {
      program,
      "--foreground",
      "--readonly",
      "--unix",
      in_dir + kSocketName,
      "--pidfile",
      in_dir + kPidName,
      "--filter=exitwhen",
      "--filter=cache",
      "--filter=retry",
      "--filter=" + *filter,
      "curl",
      "clonefs-parameters=/proc/self/fd/" + std::to_string(kParametersFd),
      "protocols=http,https",
      "retries=3",
      "retry-delay=1",
      "cache-on-read=true",
      std::string("exit-when-script=") + kExitScript,
      "exit-when-poll=1"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pid_pipe[2];
  if (::pipe2(pid_pipe, O_CLOEXEC) != 0) return Status::from_errno(errno, "pipe");
  UniqueFd pid_read(pid_pipe[0]), pid_write(pid_pipe[1]);
  const int fds[3] = {parameters.get(), dir, lease->get()};
  const int output = log->get(), report = pid_write.get();
  const pid_t child = ::fork();
  if (child < 0) return Status::from_errno(errno, "fork");
  if (child == 0) {
    // Async-signal-safe calls only until exec. A session of its own, then a grandchild: nbdkit
    // is reparented away from every clone.
    ::setsid();
    const pid_t grandchild = ::fork();
    if (grandchild != 0) {
      (void)!::write(report, &grandchild, sizeof grandchild);
      ::_exit(grandchild > 0 ? 0 : 127);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    int high[3];
    for (int i = 0; i < 3; ++i) high[i] = ::fcntl(fds[i], F_DUPFD, 10);
    const int high_output = ::fcntl(output, F_DUPFD, 10);
    const int null = ::open("/dev/null", O_RDONLY);
    if (high[0] < 0 || high[1] < 0 || high[2] < 0 || high_output < 0 || null < 0 ||
        ::dup2(null, 0) < 0 || ::dup2(high_output, 1) < 0 || ::dup2(high_output, 2) < 0 ||
        ::dup2(high[0], kParametersFd) < 0 || ::dup2(high[1], kDirectoryFd) < 0 ||
        ::dup2(high[2], kLeaseFd) < 0) {
      ::_exit(127);
    }
    ::close_range(kLeaseFd + 1, ~0U, 0);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  pid_write.reset();
  int status = 0;
  ::waitpid(child, &status, 0);
  pid_t server = 0;
  if (::read(pid_read.get(), &server, sizeof server) != sizeof server || server <= 0)
    return Status::error(EIO, "cannot start the shared source's nbdkit");
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, server, 0)));
  return wait_accepting(server, pidfd.get());
}

// Until nbdkit has written its PID file (it does once listening) and answers, exits, or
// kStartTimeout passes (then it is killed).
Status SharedCurlServer::wait_accepting(pid_t pid, int pidfd) {
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd exited = {pidfd, POLLIN, 0};
    if (pidfd >= 0 && ::poll(&exited, 1, 0) > 0) {
      auto log = open_in(directory_fd_.get(), kLogName, O_RDONLY);
      std::string why = log ? nbdkit_launch::last_error_line(read_all(log->get()), url_) : "";
      return Status::error(EIO, "nbdkit (curl plugin, shared) exited at start: " +
                                    (why.empty() ? std::string("no message") : why));
    }
    struct stat st {};
    if (::fstatat(directory_fd_.get(), kPidName, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_size > 0 &&
        answers(directory_fd_.get())) {
      return Status::ok();
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  return Status::error(ETIMEDOUT,
                       "nbdkit (curl plugin, shared) did not accept connections within " +
                           std::to_string(kStartTimeout.count() / 1000) + " s");
}

// Waits for the server to exit, then joins (or starts) the next one; the NBD connections
// reconnect to it by themselves.
void SharedCurlServer::watch() {
  milliseconds backoff = kFirstBackoff;
  while (true) {
    int pidfd;
    {
      std::lock_guard lock(mu_);
      pidfd = pidfd_.get();
    }
    pollfd fds[2] = {{stop_fd_.get(), POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[0].revents & POLLIN) return;
    if (!(fds[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    {
      std::lock_guard lock(mu_);
      read_log_locked();
    }
    pollfd stop = {stop_fd_.get(), POLLIN, 0};
    if (::poll(&stop, 1, static_cast<int>(backoff.count())) > 0) return;
    if (join()) {
      backoff = kFirstBackoff;
    } else {
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }
}

void SharedCurlServer::read_log_locked() {
  if (log_fd_.get() < 0) return;
  std::string text = read_all(log_fd_.get());
  if (text.empty()) return;
  log_tail_ += text;
  if (log_tail_.find(nbdkit_launch::kPreconditionFailed) != std::string::npos)
    precondition_failed_ = true;
  if (log_tail_.size() > kKeptLog) log_tail_.erase(0, log_tail_.size() - kKeptLog);
}

std::string SharedCurlServer::nbd_uri() const {
  return "nbd+unix:///?socket=" + socket_path(directory_fd_.get());
}

std::string SharedCurlServer::last_error() {
  std::lock_guard lock(mu_);
  read_log_locked();
  return nbdkit_launch::last_error_line(log_tail_, url_);
}

bool SharedCurlServer::modified_since_checked() {
  std::lock_guard lock(mu_);
  read_log_locked();
  return precondition_failed_;
}

UniqueFd SharedCurlServer::hydration_turn(const std::atomic<bool>& give_up) {
  // Whichever turn is free first, looked for from a different one each time. A descriptor of its
  // own for each: an flock belongs to the open file, and two threads must not share one turn.
  // A turn is held for one fetch at most (bounded by the source's read timeout): polled for, until
  // this clone closes: a neighbour stopped while holding one must not hold up its unmount.
  const unsigned first = next_turn_.fetch_add(1, std::memory_order_relaxed) % kHydrationTurns;
  std::array<UniqueFd, kHydrationTurns> files;
  for (unsigned i = 0; i < kHydrationTurns; ++i) {
    auto file =
        open_in(directory_fd_.get(), kTurnNames[(first + i) % kHydrationTurns], O_RDONLY | O_CREAT);
    if (!file) return UniqueFd();
    files[i] = std::move(*file);
  }
  while (!give_up.load(std::memory_order_relaxed)) {
    for (UniqueFd& file : files) {
      if (::flock(file.get(), LOCK_EX | LOCK_NB) == 0) return std::move(file);
      if (errno != EWOULDBLOCK && errno != EINTR) return UniqueFd();
    }
    std::this_thread::sleep_for(kTurnPoll);
  }
  return UniqueFd();
}

pid_t SharedCurlServer::server_pid() {
  std::lock_guard lock(mu_);
  return pid_;
}

SharedCurlServer::~SharedCurlServer() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_fd_.get(), &one, sizeof one);
    watcher_.join();
  }
  // Closing the lease's descriptor lets go of this process's lease.
}

}  // namespace clonefs
