#include "io/curl_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "io/source_uri.h"

extern char** environ;

namespace clonefs {
namespace {

using std::chrono::milliseconds;

constexpr const char* kSocketName = "nbd.sock";
// Where nbdkit finds, after exec, the parameters memfd and the private directory.
constexpr int kParametersFd = 3;
constexpr int kDirectoryFd = 4;
constexpr milliseconds kStartTimeout{5000};
constexpr milliseconds kFirstBackoff{500};
constexpr milliseconds kMaxBackoff{8000};
constexpr milliseconds kStopGrace{3000};
constexpr size_t kKeptOutput = 16 << 10;
using nbdkit_launch::find_program;
using nbdkit_launch::kPreconditionFailed;

}  // namespace

std::string nbdkit_launch::find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr && *path != '\0' ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    size_t end = dirs.find(':', at);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(at, end - at) + "/" + name;
    if (end > at && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return "";
}

// clonefs's nbdkit filter, installed beside the binary: BINDIR/../lib/clonefs/nbdkit (the build
// tree has the same layout). nbdkit runs with clonefs's rights, so the filter must be a file nobody
// else can change.
Result<std::string> nbdkit_launch::parameters_filter() {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return Status::from_errno(errno, "readlink /proc/self/exe");
  std::string dir(exe, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  std::string path = dir + "/../lib/clonefs/nbdkit/nbdkit-clonefs-parameters-filter.so";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::from_errno(errno, "clonefs's nbdkit filter " + path +
                                         " (http sources need it; is clonefs fully installed?)");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || (st.st_uid != 0 && st.st_uid != ::geteuid())) {
    return Status::error(EPERM, "clonefs's nbdkit filter " + path +
                                    " could be changed by another user: refusing to load it");
  }
  return path;
}

std::string nbdkit_launch::http_date_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

std::string nbdkit_launch::curl_parameters(const std::string& url, const HttpRequest& request,
                                           const std::string& date) {
  std::string text = "url=" + url + '\0';
  for (const std::string& header : request.headers) text += "header=" + header + '\0';
  if (!request.ca_file.empty()) text += "cainfo=" + request.ca_file + '\0';
  return text + "header=If-Unmodified-Since: " + date + '\0';
}

std::string nbdkit_launch::last_error_line(const std::string& output, const std::string& url) {
  std::string line;
  for (size_t at = 0; at < output.size();) {
    size_t end = output.find('\n', at);
    if (end == std::string::npos) end = output.size();
    std::string candidate = output.substr(at, end - at);
    if (size_t e = candidate.find("error: "); e != std::string::npos)
      line = candidate.substr(e + 7);
    at = end + 1;
  }
  return redact_text(line, url);
}

namespace {

// The directories of processes that died without removing theirs (a serving process killed with
// SIGKILL; its nbdkit leaves the socket): "clonefs-http-PID-XXXXXX" whose PID is gone, made by
// this user (mode 0700), holding at most the socket. A PID in use again by another process keeps
// its directory until that one ends.
void remove_dead_directories(const std::string& parent) {
  DIR* dir = ::opendir(parent.c_str());
  if (dir == nullptr) return;
  const std::string prefix = "clonefs-http-";
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    UniqueFd fd(
        ::openat(::dirfd(dir), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid() ||
        (st.st_mode & 077) != 0) {
      continue;
    }
    ::unlinkat(fd.get(), kSocketName, 0);
    ::unlinkat(::dirfd(dir), name.c_str(), AT_REMOVEDIR);  // fails, harmlessly, if not empty
  }
  ::closedir(dir);
}

// A private directory: made by mkdtemp (0700, unpredictable), under /run for root, else
// XDG_RUNTIME_DIR, else /tmp; named with this process's PID so that a later process can tell it
// is left over.
Status make_private_directory(std::string& path, UniqueFd& fd) {
  std::vector<std::string> parents;
  if (::geteuid() == 0) parents.push_back("/run");
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && *runtime == '/')
    parents.push_back(runtime);
  parents.push_back("/tmp");
  int last = ENOENT;
  for (const std::string& parent : parents) {
    remove_dead_directories(parent);
    std::string name = parent + "/clonefs-http-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(name.data()) == nullptr) {
      last = errno;
      continue;
    }
    fd.reset(::open(name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid() ||
        (st.st_mode & 077) != 0) {
      return Status::error(EPERM, "private directory " + name + " was replaced as it was made");
    }
    path = name;
    return Status::ok();
  }
  return Status::from_errno(last, "cannot make a private directory for nbdkit's socket");
}

}  // namespace

Result<std::unique_ptr<CurlServer>> CurlServer::start(const std::string& url, HttpRequest request) {
  std::unique_ptr<CurlServer> server(new CurlServer(url, std::move(request)));
  CLONEFS_RETURN_IF_ERROR(server->prepare());
  server->watcher_ = std::thread([s = server.get()] { s->watch(); });
  CLONEFS_RETURN_IF_ERROR(server->wait_accepting());
  return server;
}

Status CurlServer::prepare() {
  auto filter = nbdkit_launch::parameters_filter();
  if (!filter) return filter.status();
  filter_ = *filter;
  CLONEFS_RETURN_IF_ERROR(make_private_directory(directory_, directory_fd_));
  // The second the identity is checked from: sent as If-Unmodified-Since with every request,
  // it makes a file modified later answer 412 rather than other bytes.
  checked_at_ = nbdkit_launch::http_date_now();
  parameters_fd_.reset(::memfd_create("clonefs-http-parameters", MFD_CLOEXEC));
  if (parameters_fd_.get() < 0) return Status::from_errno(errno, "memfd for nbdkit's parameters");
  const std::string parameters = nbdkit_launch::curl_parameters(url_, request_, checked_at_);
  if (::write(parameters_fd_.get(), parameters.data(), parameters.size()) !=
      static_cast<ssize_t>(parameters.size())) {
    return Status::from_errno(errno, "write of nbdkit's parameters");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return Status::from_errno(errno, "pipe for nbdkit's output");
  output_read_.reset(pipe_fds[0]);
  output_write_.reset(pipe_fds[1]);
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  if (stop_fd_.get() < 0) return Status::from_errno(errno, "eventfd");
  return Status::ok();
}

std::string CurlServer::nbd_uri() const {
  return "nbd+unix:///?socket=/proc/self/fd/" + std::to_string(directory_fd_.get()) + "/" +
         kSocketName;
}

// Until a connection to the socket succeeds, nbdkit exits, or kStartTimeout passes.
Status CurlServer::wait_accepting() {
  const std::string socket_path =
      "/proc/self/fd/" + std::to_string(directory_fd_.get()) + "/" + kSocketName;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path.copy(address.sun_path, sizeof address.sun_path - 1);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu_);
      if (spawned_ && pid_ == 0) {
        if (spawn_errno_ != 0) return Status::from_errno(spawn_errno_, "cannot start nbdkit");
        std::string why = output_;
        return Status::error(EIO, "nbdkit (curl plugin) exited at start: " +
                                      redact_text(why.empty() ? "no message" : why, url_));
      }
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.get() >= 0 &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      // The greeting read before closing: closing first has nbdkit log a broken pipe.
      timeval timeout{1, 0};
      ::setsockopt(probe.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      char greeting[18];
      (void)::recv(probe.get(), greeting, sizeof greeting, MSG_WAITALL);
      return Status::ok();
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return Status::error(ETIMEDOUT, "nbdkit (curl plugin) did not accept connections within " +
                                      std::to_string(kStartTimeout.count() / 1000) + " s");
}

pid_t CurlServer::spawn() {
  const std::string program = find_program("nbdkit");
  if (program.empty()) {
    errno = ENOENT;
    std::lock_guard lock(mu_);
    output_ = "nbdkit not found in PATH (install the nbdkit package)";
    return -1;
  }
  ::unlinkat(directory_fd_.get(), kSocketName, 0);  // a dead nbdkit leaves its socket behind
  // Everything nbdkit is told on its command line is public: the URL and the headers are in the
  // memfd. protocols=: a redirect to file:// or another scheme would read what clonefs may read.
  std::vector<std::string> args = {
      program,
      "--foreground",
      "--readonly",
      "--exit-with-parent",
      "--unix",
      "/proc/self/fd/" + std::to_string(kDirectoryFd) + "/" + kSocketName,
      "--filter=retry",
      "--filter=" + filter_,
      "curl",
      "clonefs-parameters=/proc/self/fd/" + std::to_string(kParametersFd),
      "protocols=http,https",
      "retries=3",
      "retry-delay=1"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const int parameters = parameters_fd_.get(), directory = directory_fd_.get(),
            output = output_write_.get();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The child: async-signal-safe calls only until exec.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Out of the way of the numbers they are given below.
  const int high_parameters = ::fcntl(parameters, F_DUPFD, 10);
  const int high_directory = ::fcntl(directory, F_DUPFD, 10);
  const int high_output = ::fcntl(output, F_DUPFD, 10);
  const int null = ::open("/dev/null", O_RDONLY);
  if (high_parameters < 0 || high_directory < 0 || high_output < 0 || null < 0 ||
      ::dup2(null, 0) < 0 || ::dup2(high_output, 1) < 0 || ::dup2(high_output, 2) < 0 ||
      ::dup2(high_parameters, kParametersFd) < 0 || ::dup2(high_directory, kDirectoryFd) < 0) {
    ::_exit(127);
  }
  // Nothing else of this process (a FUSE connection, the metadata) is nbdkit's.
  ::close_range(kDirectoryFd + 1, ~0U, 0);
  ::execve(argv[0], argv.data(), environ);
  ::_exit(127);
}

void CurlServer::read_output() {
  char buf[4096];
  std::lock_guard lock(mu_);
  for (ssize_t n; (n = ::read(output_read_.get(), buf, sizeof buf)) > 0;) {
    std::string text(buf, static_cast<size_t>(n));
    if (text.find(kPreconditionFailed) != std::string::npos) precondition_failed_ = true;
    output_ += text;
  }
  if (output_.size() > kKeptOutput) output_.erase(0, output_.size() - kKeptOutput);
}

void CurlServer::watch() {
  milliseconds backoff = kFirstBackoff;
  while (true) {
    pid_t pid = spawn();
    {
      std::lock_guard lock(mu_);
      spawned_ = true;
      pid_ = pid > 0 ? pid : 0;
      if (pid <= 0 && spawn_errno_ == 0) spawn_errno_ = errno != 0 ? errno : EIO;
    }
    if (pid <= 0) return;  // reads then fail as in an outage; the error says why
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    bool exited = false;
    while (!exited) {
      pollfd fds[3] = {{output_read_.get(), POLLIN, 0},
                       {stop_fd_.get(), POLLIN, 0},
                       {pidfd.get(), POLLIN, 0}};  // ignored if -1
      int ready = ::poll(fds, 3, pidfd.get() < 0 ? 100 : -1);
      if (ready < 0 && errno != EINTR) break;
      if (fds[0].revents & POLLIN) read_output();
      if (fds[1].revents & POLLIN) {
        stop_child();
        return;
      }
      int status = 0;
      exited =
          (pidfd.get() < 0 || (fds[2].revents & POLLIN)) && ::waitpid(pid, &status, WNOHANG) == pid;
    }
    read_output();
    {
      std::lock_guard lock(mu_);
      pid_ = 0;
    }
    pollfd stop = {stop_fd_.get(), POLLIN, 0};
    if (::poll(&stop, 1, static_cast<int>(backoff.count())) > 0) return;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

// SIGTERM (nbdkit finishes its requests and exits), SIGKILL after kStopGrace.
void CurlServer::stop_child() {
  pid_t pid;
  {
    std::lock_guard lock(mu_);
    pid = pid_;
    pid_ = 0;
  }
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

CurlServer::~CurlServer() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_fd_.get(), &one, sizeof one);
    watcher_.join();
  }
  if (directory_fd_.get() >= 0) {
    ::unlinkat(directory_fd_.get(), kSocketName, 0);
    ::rmdir(directory_.c_str());
  }
}

std::string CurlServer::last_error() {
  read_output();
  std::lock_guard lock(mu_);
  return nbdkit_launch::last_error_line(output_, url_);
}

bool CurlServer::modified_since_checked() {
  read_output();
  std::lock_guard lock(mu_);
  return precondition_failed_;
}

}  // namespace clonefs
