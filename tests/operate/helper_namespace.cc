#include "operate/helper_namespace.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "control/status.h"

extern char** environ;

namespace clonefs::testing {
namespace {

// Exited: gone, or a zombie nobody reaped yet (a detached daemon is not our child).
bool exited(int pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

}  // namespace

HelperNamespace::HelperNamespace(const std::string& helper_dir, std::string scope,
                                 const std::string& extra_setup)
    : scope_(std::move(scope)) {
  if (run("command -v unshare && command -v nsenter").exit_code != 0) {
    problem_ = "unshare/nsenter (util-linux) are missing";
    return;
  }
  std::string sbin = std::filesystem::canonical("/sbin").string();
  std::string script = "mount -t overlay clonefs-helper -o lowerdir=" + helper_dir + ":" + sbin +
                       " " + sbin + (extra_setup.empty() ? "" : " && " + extra_setup) +
                       " && exec sleep 3600";
  const char* argv[] = {"unshare", "--mount", "--propagation", "private", "--",
                        "sh",      "-c",      script.c_str(),  nullptr};
  if (::posix_spawnp(&holder_, "unshare", nullptr, nullptr, const_cast<char**>(argv), environ) !=
      0) {
    holder_ = -1;
    problem_ = "cannot start unshare";
    return;
  }
  // Ready once the holder runs sleep: the setup before it succeeded.
  for (int i = 0; i < 400; ++i) {
    std::ifstream comm("/proc/" + std::to_string(holder_) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name == "sleep") return;
    int status;
    if (::waitpid(holder_, &status, WNOHANG) == holder_) {
      holder_ = -1;
      problem_ = "could not set up a private mount namespace (overlay of " + sbin + ", " +
                 (extra_setup.empty() ? std::string("nothing else") : extra_setup) + ")";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  problem_ = "the private mount namespace was not ready in 10 s";
}

HelperNamespace::~HelperNamespace() {
  if (holder_ <= 0) return;
  unmount_all();
  ::kill(holder_, SIGKILL);
  ::waitpid(holder_, nullptr, 0);
}

CommandResult HelperNamespace::run_inside(const std::string& command) const {
  // unshare (without --fork) execs sh, which execs sleep: the holder is one process throughout.
  return run("nsenter --target " + std::to_string(holder_) + " --mount -- sh -c " +
             shell_quote(command));
}

void HelperNamespace::unmount_all() const {
  CommandResult mounts = run_inside("findmnt -rn -t fuse.clonefs -o TARGET");
  std::istringstream lines(mounts.output);
  for (std::string target; std::getline(lines, target);) {
    if (target.rfind(scope_ + "/", 0) != 0) continue;
    CommandResult status = run_inside(shell_quote(clonefs_binary()) + " status --json " + target);
    auto parsed = parse_status(status.output, "status");
    run_inside("umount " + target + " || umount -l " + target);
    if (parsed && parsed->pid) {
      int pid = *parsed->pid;
      for (int i = 0; i < 3000 && !exited(pid); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!exited(pid)) ::kill(pid, SIGKILL);
    }
  }
}

bool wait_until_released(const std::string& metadata) {
  for (int i = 0; i < 300; ++i) {
    CommandResult r =
        run(shell_quote(clonefs_binary()) + " status --json " + shell_quote(metadata));
    auto parsed = parse_status(r.output, "status");
    if (parsed && !parsed->mounted) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace clonefs::testing
