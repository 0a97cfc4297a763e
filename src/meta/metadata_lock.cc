#include "meta/metadata_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

namespace clonefs {

Result<MetadataLock> MetadataLock::acquire(const std::string& path) {
  // O_NONBLOCK: a FIFO planted at the name must not hang the command (opening it read-only would
  // wait for a writer).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::from_errno(errno, "metadata " + path);
  MetadataLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return lock;
  if (errno != EWOULDBLOCK) return Status::from_errno(errno, "lock metadata " + path);
  int pid = metadata_holder_pid(path);
  std::string holder = pid > 0 ? "pid " + std::to_string(pid) : "another process";
  std::string command;
  if (pid > 0) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/cmdline");
    std::getline(comm, command, '\0');
  }
  if (!command.empty()) holder += " (" + command + ")";
  return Status::error(EBUSY,
                       "metadata " + path + " is in use by " + holder +
                           ": a clone is held by one clonefs process at a time (unmount it first)");
}

int metadata_holder_pid(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  // /proc/locks names the file as major:minor:inode, the device numbers in hex.
  char device[64];
  std::snprintf(device, sizeof device, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string id, type, mode, access, pid, dev;
    fields >> id >> type;
    if (type == "->") continue;  // a blocked waiter holds nothing
    fields >> mode >> access >> pid >> dev;
    if (type == "FLOCK" && access == "WRITE" && dev == device) return std::atoi(pid.c_str());
  }
  return 0;
}

}  // namespace clonefs
