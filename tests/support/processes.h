// The machine's processes as /proc shows them, for tests that look for the servers clonefs
// started (nbdkit) and check who their parent is.
#pragma once

#include <string>
#include <vector>

namespace clonefs::testing {

// A file's whole content ("" if it cannot be read).
std::string file_text(const std::string& path);

struct ProcessEntry {
  int pid = 0;
  int parent = 0;
  bool zombie = false;
  std::string command_line;  // NULs as in /proc/PID/cmdline
};

// Every process /proc lists now.
std::vector<ProcessEntry> all_processes();

// /proc/PID/FILE ("" once the process is gone).
std::string process_file(int pid, const std::string& file);

}  // namespace clonefs::testing
