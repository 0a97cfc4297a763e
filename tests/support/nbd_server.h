// A real NBD server (nbdkit or qemu-nbd) on a unix socket, run as this process's child and
// stopped by its PID at scope end, even when a test fails. stop() and start() again on the same
// socket stand for a server that crashed and was restarted.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace clonefs::testing {

class NbdServer {
 public:
  // `argv` is the whole command line; "{socket}" in it is replaced by `socket`. Starts it.
  NbdServer(std::vector<std::string> argv, std::string socket);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // True once the server accepts connections on the socket.
  bool start();
  // SIGKILL (a crash, not a clean shutdown), reaped; the socket file is removed.
  void kill();
  // SIGTERM, reaped: a clean shutdown (nbdkit's stats filter writes its file then).
  void stop();
  // Sends `sig` and returns: SIGTERM has nbdkit answer every request with ESHUTDOWN until its
  // clients disconnect, SIGSTOP pauses it (SIGCONT resumes it).
  void signal(int sig);
  // Reaps the server if it exits within `timeout` (the socket file is removed then).
  bool wait_exit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  const std::string& socket() const { return socket_; }
  // nbd+unix:///EXPORT?socket=SOCKET
  std::string uri(const std::string& export_name = "") const;
  // Replaces the command line for the next start() (a server restarted with other data).
  void set_argv(std::vector<std::string> argv) { argv_ = std::move(argv); }

 private:
  std::vector<std::string> argv_;
  std::string socket_;
  pid_t pid_ = -1;
};

// Why NBD tests cannot run here ("" if they can): nbdkit or qemu-nbd missing.
std::string nbd_environment_problem();

}  // namespace clonefs::testing

#define CLONEFS_REQUIRE_NBD_ENVIRONMENT()                                     \
  do {                                                                        \
    std::string nbd_problem_ = ::clonefs::testing::nbd_environment_problem(); \
    if (!nbd_problem_.empty()) {                                              \
      if (::clonefs::testing::running_in_ci())                                \
        FAIL() << "CI must run NBD tests: " << nbd_problem_;                  \
      GTEST_SKIP() << "needs NBD servers: " << nbd_problem_;                  \
    }                                                                         \
  } while (0)
