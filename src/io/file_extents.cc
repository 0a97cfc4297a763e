#include "io/file_extents.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "io/unique_fd.h"

namespace clonefs {
namespace {

// A filesystem's device as a loop device over the image: the byte offset of the filesystem in
// the image (the loop device's offset plus the partition's start).
struct LoopPlacement {
  std::string device;  // /dev/loopN
  uint64_t offset = 0;
};

std::string read_sysfs(const std::string& path) {
  std::ifstream in(path);
  std::string value;
  std::getline(in, value);
  return value;
}

dev_t from_kernel_dev(uint64_t encoded) {  // see storage_identity.cc
  unsigned major_number = static_cast<unsigned>((encoded & 0xfff00) >> 8);
  unsigned minor_number = static_cast<unsigned>((encoded & 0xff) | ((encoded >> 12) & 0xfff00));
  return makedev(major_number, minor_number);
}

Result<LoopPlacement> placement_of(dev_t device, const struct stat& image, const std::string& path,
                                   const std::string& image_path) {
  namespace fs = std::filesystem;
  const std::string sys =
      "/sys/dev/block/" + std::to_string(major(device)) + ":" + std::to_string(minor(device));
  std::error_code ec;
  fs::path node = fs::canonical(sys, ec);
  if (ec) {
    return Status::error(EINVAL, path +
                                     " is not on a block device (its filesystem is not on a "
                                     "loop device over " +
                                     image_path + ")");
  }
  uint64_t offset = 0;
  if (fs::exists(node / "partition")) {  // a partition: its start, then the whole disk
    offset = std::stoull(read_sysfs(node / "start")) * 512;
    node = node.parent_path();
  }
  const std::string name = node.filename().string();
  if (!fs::exists(node / "loop")) {
    return Status::error(
        EINVAL, path + " is on /dev/" + name + ", not on a loop device over " + image_path);
  }
  const std::string loop = "/dev/" + name;
  UniqueFd fd(::open(loop.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return Status::from_errno(errno, "open " + loop + " (holding " + path + ")");
  loop_info64 info{};
  if (::ioctl(fd.get(), LOOP_GET_STATUS64, &info) != 0) {
    return Status::from_errno(errno, "LOOP_GET_STATUS64 " + loop);
  }
  if (from_kernel_dev(info.lo_device) != image.st_dev ||
      static_cast<ino_t>(info.lo_inode) != image.st_ino) {
    return Status::error(EINVAL,
                         path + " is on " + loop + ", which is not backed by " + image_path +
                             " (backing file: " + read_sysfs(node / "loop" / "backing_file") + ")");
  }
  return LoopPlacement{loop, offset + info.lo_offset};
}

// FIEMAP, a batch of extents at a time; physical offsets are the filesystem device's.
Status file_extents(const std::string& path, uint64_t offset, std::vector<Extent>& out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return Status::from_errno(errno, "open " + path);
  constexpr unsigned kBatch = 256;
  const size_t bytes = sizeof(fiemap) + kBatch * sizeof(fiemap_extent);
  auto buffer = std::make_unique<uint64_t[]>(bytes / sizeof(uint64_t) + 1);
  auto* map = reinterpret_cast<fiemap*>(buffer.get());
  uint64_t start = 0;
  for (;;) {
    std::memset(map, 0, bytes);
    map->fm_start = start;
    map->fm_length = FIEMAP_MAX_OFFSET - start;
    map->fm_flags = FIEMAP_FLAG_SYNC;  // delayed allocations get their place first
    map->fm_extent_count = kBatch;
    if (::ioctl(fd.get(), FS_IOC_FIEMAP, map) != 0) {
      return Status::from_errno(errno, "FIEMAP " + path);
    }
    if (map->fm_mapped_extents == 0) return Status::ok();
    for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
      const fiemap_extent& e = map->fm_extents[i];
      // Data not at a known place of the device (inline in the inode, encoded) is in metadata
      // blocks the filesystem reads anyway.
      if ((e.fe_flags &
           (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_NOT_ALIGNED)) == 0) {
        out.push_back({offset + e.fe_physical, offset + e.fe_physical + e.fe_length});
      }
      start = e.fe_logical + e.fe_length;
      if (e.fe_flags & FIEMAP_EXTENT_LAST) return Status::ok();
    }
  }
}

}  // namespace

Result<FileExtents> image_extents_of_files(const std::string& image,
                                           const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  struct stat image_st {};
  if (::stat(image.c_str(), &image_st) != 0) return Status::from_errno(errno, "stat " + image);
  FileExtents result;
  for (const std::string& path : paths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Status::from_errno(errno, "stat " + path);
    auto placement = placement_of(st.st_dev, image_st, path, image);
    if (!placement) return placement.status();
    auto one = [&](const std::string& file) -> Status {
      ++result.files;
      return file_extents(file, placement->offset, result.extents);
    };
    if (S_ISREG(st.st_mode)) {
      CLONEFS_RETURN_IF_ERROR(one(path));
    } else if (S_ISDIR(st.st_mode)) {
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(
               path, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        struct stat entry {};
        if (::lstat(it->path().c_str(), &entry) != 0) continue;  // gone meanwhile
        if (entry.st_dev != st.st_dev) {                         // another filesystem mounted below
          if (S_ISDIR(entry.st_mode)) it.disable_recursion_pending();
          continue;
        }
        if (S_ISREG(entry.st_mode)) CLONEFS_RETURN_IF_ERROR(one(it->path().string()));
      }
      if (ec) return Status::error(ec.value(), "walk " + path + ": " + ec.message());
    } else {
      return Status::error(EINVAL, path + " is neither a regular file nor a directory");
    }
  }
  return result;
}

}  // namespace clonefs
