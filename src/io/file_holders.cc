#include "io/file_holders.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

namespace clonefs {
namespace {

// The name the kernel reports for an open file: absolute, symlinks resolved. Only the parent is
// resolved: IMAGE itself may be a busy FUSE mount, and its name is what the kernel shows.
std::string kernel_name(const std::string& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  auto parent = std::filesystem::canonical(abs.parent_path(), ec);
  return ec ? abs.lexically_normal().string() : (parent / abs.filename()).string();
}

// A file unlinked while open is shown with this suffix.
std::string without_deleted(std::string name) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (name.size() > kDeleted.size() && name.ends_with(kDeleted))
    name.resize(name.size() - kDeleted.size());
  return name;
}

std::string read_link(const std::string& link) {
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

bool holds(pid_t pid, const std::string& name) {
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  Dir dir(::opendir(fds.c_str()));
  if (!dir) return false;
  while (dirent* entry = ::readdir(dir.get())) {
    if (entry->d_name[0] == '.') continue;
    if (without_deleted(read_link(fds + "/" + entry->d_name)) == name) return true;
  }
  return false;
}

std::string command_of(pid_t pid) {
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string command;
  std::getline(cmdline, command, '\0');
  return command;
}

}  // namespace

std::vector<FileHolder> processes_holding(const std::string& path) {
  const std::string name = kernel_name(path);
  std::vector<FileHolder> holders;
  Dir proc(::opendir("/proc"));
  if (!proc) return holders;
  const pid_t self = ::getpid();
  while (dirent* entry = ::readdir(proc.get())) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    if (holds(static_cast<pid_t>(pid), name))
      holders.push_back({static_cast<pid_t>(pid), command_of(static_cast<pid_t>(pid))});
  }
  std::sort(holders.begin(), holders.end(),
            [](const FileHolder& a, const FileHolder& b) { return a.pid < b.pid; });
  return holders;
}

std::vector<std::string> loop_devices_backed_by(const std::string& path) {
  const std::string name = kernel_name(path);
  std::vector<std::string> devices;
  Dir block(::opendir("/sys/block"));
  if (!block) return devices;
  while (dirent* entry = ::readdir(block.get())) {
    std::string device = entry->d_name;
    if (!device.starts_with("loop")) continue;
    std::ifstream backing("/sys/block/" + device + "/loop/backing_file");
    std::string file;
    if (std::getline(backing, file) && without_deleted(file) == name)
      devices.push_back("/dev/" + device);
  }
  std::sort(devices.begin(), devices.end());
  return devices;
}

std::string describe_holders(const std::string& path) {
  std::string text;
  std::vector<FileHolder> processes = processes_holding(path);
  for (size_t i = 0; i < processes.size(); ++i) {
    text +=
        (i == 0 ? "held open by " : ", ") + std::string("pid ") + std::to_string(processes[i].pid);
    if (!processes[i].command.empty()) text += " (" + processes[i].command + ")";
  }
  std::vector<std::string> loops = loop_devices_backed_by(path);
  if (!loops.empty()) {
    if (!text.empty()) text += ", and ";
    text += loops.size() == 1 ? "loop device " : "loop devices ";
    for (size_t i = 0; i < loops.size(); ++i) text += (i == 0 ? "" : ", ") + loops[i];
    text += loops.size() == 1 ? " is attached to it" : " are attached to it";
  }
  return text;
}

}  // namespace clonefs
