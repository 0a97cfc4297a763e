// The image file's own rules, apart from the FUSE protocol (as mountpoint-s3 keeps fs.rs apart
// from fuse.rs): its size is the source's and never changes, reads stop at the end, writes past
// it fail, which fallocate modes exist, and its owner, mode and times. docs/SEMANTICS.md
// "Operations on the image" is the specification; tests/unit/image_file_test.cc checks each rule
// without a mount. The FUSE handlers (fuse/image_ops.cc) turn a request into one call here.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "engine/clone_engine.h"
#include "util/page_buffer.h"
#include "util/status.h"

namespace clonefs {

// The image file's owner, mode and times. Only the size is the clone's; the rest is the file's
// (copied from the file mounted over, changeable with chmod/chown/touch, not persisted).
struct ImageAttributes {
  mode_t mode = 0644;  // permission bits only
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec atime {};
  struct timespec mtime {};
  struct timespec ctime {};
};

// One setattr: only the fields present change. A time whose tv_nsec is UTIME_NOW means "now",
// as in utimensat(2).
struct AttributeChange {
  std::optional<mode_t> mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<uint64_t> size;  // truncate/ftruncate
  std::optional<struct timespec> atime;
  std::optional<struct timespec> mtime;
};

class ImageFile {
 public:
  using Clock = std::function<struct timespec()>;

  // How a write that straddles the end ends.
  enum class WritesReach {
    kDaemonFirst,  // each write() reaches write() here before it returns: cut short at the end
    // The kernel caches writes (FUSE writeback cache) and answers write() itself; a short count
    // at write-back would reach nobody, and the kernel would keep the bytes past the end (and the
    // size it grew for them) as written. The part inside is written and the write fails, EFBIG,
    // which the next fsync reports.
    kKernelCacheFirst,
  };

  // `path` only names the image in messages. `clock` gives "now" for times (the real-time clock
  // unless a test passes its own).
  ImageFile(CloneEngine& engine, std::string path, ImageAttributes attributes, Clock clock = {},
            WritesReach writes = WritesReach::kDaemonFirst);
  ImageFile(const ImageFile&) = delete;
  ImageFile& operator=(const ImageFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The I/O size reported to tools (st_blksize) and to a loop device (f_bsize): a region, capped
  // at 1 MiB.
  uint64_t block_size() const { return block_size_; }

  // The image as getattr reports it (inode 1: the mount's root is the image itself).
  struct stat stat() const;
  // The "filesystem" holding the image, as statfs reports it.
  struct statvfs statfs() const;
  ImageAttributes attributes() const;

  // chmod, chown, utimes, truncate. Mode and owner change only by root or the owner, who may not
  // give the file away; the size only to what it is (EPERM otherwise). A success sets ctime.
  Status change_attributes(const AttributeChange& change, uid_t caller);

  // Up to `size` bytes at `offset`, stopping at the end (none at or past it). The bytes are in
  // a buffer this thread keeps for its next read (util/page_buffer.h), valid while the lease is.
  Result<KeptBuffer::Lease> read(int64_t offset, size_t size);
  // Where read() of the same range would find its bytes, if one descriptor holds them all at
  // the same offsets (the destination, every region valid): a reader that can take them from
  // there without a copy (a splice) may; `fd` -1: call read().
  struct Direct {
    int fd = -1;
    size_t length = 0;  // the bytes read() would return
  };
  Result<Direct> direct_read(int64_t offset, size_t size);
  // Writes `data` at `offset`, cut short at the end; returns the bytes written. EFBIG at or past
  // the end, and for a write straddling it when the kernel caches writes (the part inside is
  // written).
  Result<size_t> write(int64_t offset, std::span<const std::byte> data);
  // fsync and fdatasync alike: every earlier write durable and committed.
  Status sync();
  // fallocate(2) with `mode` (FALLOC_FL_* flags).
  Status fallocate(int mode, int64_t offset, int64_t length);

 private:
  struct timespec now() const;

  CloneEngine& engine_;
  const std::string path_;
  const uint64_t size_;
  const uint64_t block_size_;
  const Clock clock_;
  const WritesReach writes_;
  mutable std::mutex mu_;
  ImageAttributes attributes_;  // guarded by mu_
};

}  // namespace clonefs
