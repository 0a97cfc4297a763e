// Who keeps a file busy: the processes holding it open and the loop devices backed by it, found
// the way fuser and losetup -j do (/proc/*/fd, /sys/block/loop*/loop/backing_file), so that a
// refused unmount can name them instead of guessing.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace clonefs {

struct FileHolder {
  pid_t pid = 0;
  std::string command;  // argv[0] ("" if it could not be read)
};

// Processes with `path` open (by its absolute path), in pid order. Processes whose fds this user
// may not read are not seen, as with fuser.
std::vector<FileHolder> processes_holding(const std::string& path);
// Loop devices (/dev/loopN) whose backing file is `path`.
std::vector<std::string> loop_devices_backed_by(const std::string& path);
// "held open by pid 12 (qemu-system-x86_64), and loop device /dev/loop3 is attached to it", or
// "" when nothing was found.
std::string describe_holders(const std::string& path);

}  // namespace clonefs
