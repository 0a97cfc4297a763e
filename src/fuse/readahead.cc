#include "fuse/readahead.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

namespace clonefs {

std::string readahead_path(dev_t dev) {
  // FUSE names a mount's backing device "MAJOR:MINOR" of its st_dev ("-fuseblk" only for
  // fuseblk mounts, which clonefs never makes).
  return "/sys/class/bdi/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) +
         "/read_ahead_kb";
}

namespace {

constexpr long kFuseSuperMagic = 0x65735546;

// Only a FUSE mount's: were IMAGE not (or no longer) mounted, its st_dev would name the disk
// under it, and its readahead is not clonefs's to change.
Result<std::string> path_of_mount(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return Status::from_errno(errno, "statfs " + path);
  if (fs.f_type != kFuseSuperMagic) return Status::error(EINVAL, path + " is not a FUSE mount");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::from_errno(errno, "stat " + path);
  return readahead_path(st.st_dev);
}

}  // namespace

Status set_mount_readahead(const std::string& image_path, unsigned kib) {
  auto sysfs = path_of_mount(image_path);
  if (!sysfs) return sysfs.status();
  const std::string context = "setting the readahead of " + image_path + " to " +
                              std::to_string(kib) + " KiB (" + *sysfs + ")";
  int fd = ::open(sysfs->c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, context);
  const std::string text = std::to_string(kib) + "\n";
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return Status::from_errno(n < 0 ? err : EIO, context);
  return Status::ok();
}

Result<unsigned> mount_readahead(const std::string& path) {
  auto sysfs = path_of_mount(path);
  if (!sysfs) return sysfs.status();
  std::ifstream in(*sysfs);
  unsigned kib = 0;
  if (!(in >> kib)) return Status::error(EIO, "cannot read " + *sysfs);
  return kib;
}

}  // namespace clonefs
