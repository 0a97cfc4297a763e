#include "io/storage_identity.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace clonefs {
namespace {

// LOOP_GET_STATUS64 reports the backing file's st_dev in the kernel's encoding (12-bit major,
// 20-bit minor split around it), which is not glibc's dev_t layout: decode it before comparing.
dev_t from_kernel_dev(uint64_t encoded) {
  unsigned major_number = static_cast<unsigned>((encoded & 0xfff00) >> 8);
  unsigned minor_number = static_cast<unsigned>((encoded & 0xff) | ((encoded >> 12) & 0xfff00));
  return makedev(major_number, minor_number);
}

// The file behind an attached loop device; nullopt for a detached one, or one we may not open
// (then we cannot write through it either).
std::optional<FileId> loop_backing_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  loop_info64 info{};
  int rc = ::ioctl(fd, LOOP_GET_STATUS64, &info);
  ::close(fd);
  if (rc != 0) return std::nullopt;  // ENXIO: no file attached
  return FileId{from_kernel_dev(info.lo_device), static_cast<ino_t>(info.lo_inode)};
}

bool backed_by(const StorageIdentity& loop, const StorageIdentity& file) {
  return loop.block_device && !file.block_device && loop.loop_backing == file.file;
}

}  // namespace

Result<StorageIdentity> storage_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::from_errno(errno, "stat " + path);
  StorageIdentity id;
  id.file = FileId{st.st_dev, st.st_ino};
  if (S_ISBLK(st.st_mode)) {
    id.block_device = true;
    id.rdev = st.st_rdev;
    if (major(st.st_rdev) == LOOP_MAJOR) id.loop_backing = loop_backing_file(path);
  }
  return id;
}

std::string storage_relation(const StorageIdentity& a, const StorageIdentity& b) {
  if (a.block_device && b.block_device) {
    if (a.rdev == b.rdev) return "the same block device";
    if (a.loop_backing && a.loop_backing == b.loop_backing) return "loop devices of the same file";
    return "";
  }
  if (!a.block_device && !b.block_device)
    return a.file == b.file ? "same file under another name" : "";
  if (backed_by(a, b)) return "a loop device backed by that file";
  if (backed_by(b, a)) return "the file backing that loop device";
  return "";
}

bool same_storage(const StorageIdentity& a, const StorageIdentity& b) {
  return !storage_relation(a, b).empty();
}

Status require_distinct_storage(const std::vector<StorageRole>& roles) {
  std::vector<std::optional<StorageIdentity>> ids;
  for (const StorageRole& r : roles) {
    auto id = storage_identity(r.path);
    if (!id && id.status().code() != ENOENT) return id.status().with_context(r.role);
    ids.push_back(id ? std::optional(*id) : std::nullopt);
  }
  for (size_t i = 0; i < roles.size(); ++i) {
    for (size_t j = i + 1; j < roles.size(); ++j) {
      if (!ids[i] || !ids[j]) continue;
      std::string relation = storage_relation(*ids[i], *ids[j]);
      if (relation.empty()) continue;
      if (roles[i].path == roles[j].path) relation = "the same path";
      return Status::error(EINVAL, roles[i].role + " " + roles[i].path + " is the " +
                                       roles[j].role + " " + roles[j].path + " (" + relation + ")");
    }
  }
  return Status::ok();
}

}  // namespace clonefs
