#include "support/processes.h"

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace clonefs::testing {

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string process_file(int pid, const std::string& file) {
  return file_text("/proc/" + std::to_string(pid) + "/" + file);
}

std::vector<ProcessEntry> all_processes() {
  std::vector<ProcessEntry> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    ProcessEntry p;
    p.pid = std::atoi(entry->d_name);
    p.command_line = process_file(p.pid, "cmdline");
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so from the last ')'.
    const std::string stat = process_file(p.pid, "stat");
    if (size_t paren = stat.rfind(')'); paren != std::string::npos) {
      char state = 0;
      std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &p.parent);
      p.zombie = state == 'Z';
    }
    out.push_back(std::move(p));
  }
  ::closedir(proc);
  return out;
}

}  // namespace clonefs::testing
