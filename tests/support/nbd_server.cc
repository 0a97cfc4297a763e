#include "support/nbd_server.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "support/system.h"

namespace clonefs::testing {
namespace {

bool accepts(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (ok) {
    // The server's greeting read before closing: closing first has nbdkit log a broken pipe.
    timeval timeout{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char greeting[18];
    (void)::recv(fd, greeting, sizeof greeting, MSG_WAITALL);
  }
  ::close(fd);
  return ok;
}

}  // namespace

NbdServer::NbdServer(std::vector<std::string> argv, std::string socket)
    : argv_(std::move(argv)), socket_(std::move(socket)) {
  start();
}

NbdServer::~NbdServer() { kill(); }

bool NbdServer::start() {
  if (pid_ > 0) return true;
  ::unlink(socket_.c_str());
  std::vector<std::string> args = argv_;
  for (std::string& a : args) {
    for (size_t at; (at = a.find("{socket}")) != std::string::npos;) a.replace(at, 8, socket_);
  }
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // Dies with the test process, should a crash skip the destructor.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execvp(c_args[0], c_args.data());
    ::_exit(127);
  }
  pid_ = pid;
  for (int i = 0; i < 500; ++i) {
    if (accepts(socket_)) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void NbdServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  ::unlink(socket_.c_str());
}

void NbdServer::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool NbdServer::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  ::unlink(socket_.c_str());
  return true;
}

void NbdServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  ::unlink(socket_.c_str());
}

std::string NbdServer::uri(const std::string& export_name) const {
  return "nbd+unix:///" + export_name + "?socket=" + socket_;
}

std::string nbd_environment_problem() {
  for (const char* tool : {"nbdkit", "qemu-nbd", "qemu-img"}) {
    if (run(std::string("command -v ") + tool).exit_code != 0) {
      return std::string(tool) + " is not installed (scripts/install-deps.sh installs it)";
    }
  }
  return "";
}

}  // namespace clonefs::testing
