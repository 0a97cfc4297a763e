// A `sleep` started by the test with a file open on its fd 3, as QEMU holds a disk image: killed
// and reaped by its PID at scope end, whatever the test did.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <string>

namespace clonefs::testing {

class HoldingProcess {
 public:
  explicit HoldingProcess(const std::string& path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 3, path.c_str(), O_RDONLY, 0);
    const char* argv[] = {"sleep", "300", nullptr};
    if (::posix_spawnp(&pid_, "sleep", &actions, nullptr, const_cast<char**>(argv), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~HoldingProcess() { stop(); }
  HoldingProcess(const HoldingProcess&) = delete;
  HoldingProcess& operator=(const HoldingProcess&) = delete;
  pid_t pid() const { return pid_; }
  // True once the child runs `sleep` with the file open: between spawn and exec its fd 3 is
  // already open but its command line is still the test's.
  bool holding(const std::string& path) const {
    std::ifstream cmdline("/proc/" + std::to_string(pid_) + "/cmdline");
    std::string argv0;
    std::getline(cmdline, argv0, '\0');
    if (argv0 != "sleep") return false;
    char buf[4096];
    std::string link = "/proc/" + std::to_string(pid_) + "/fd/3";
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    return n > 0 && std::string(buf, static_cast<size_t>(n)).find(path) != std::string::npos;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace clonefs::testing
