#include "image/image_file.h"

#include <linux/falloc.h>

#include <algorithm>

namespace clonefs {
namespace {

struct timespec realtime_now() {
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  return now;
}

// Who may change who may use the image: root, and the file's owner (who may not give it away),
// as chmod(2) and chown(2) on a local file. The kernel already checks this (default_permissions);
// checked here too because a clone anyone could make writable is worthless.
Status may_change_ownership(const std::string& path, const ImageAttributes& current, uid_t caller,
                            const AttributeChange& change) {
  if (caller == 0 || !(change.mode || change.uid || change.gid)) return Status::ok();
  if (caller != current.uid) {
    return Status::error(
        EPERM, "uid " + std::to_string(caller) + " may not change the mode or owner of " + path +
                   ": only its owner (uid " + std::to_string(current.uid) + ") or root may");
  }
  if (change.uid && *change.uid != current.uid) {
    return Status::error(EPERM, "only root may give " + path + " to another user (uid " +
                                    std::to_string(*change.uid) + ")");
  }
  return Status::ok();
}

}  // namespace

ImageFile::ImageFile(CloneEngine& engine, std::string path, ImageAttributes attributes, Clock clock,
                     WritesReach writes)
    : engine_(engine),
      path_(std::move(path)),
      size_(engine.geometry().image_size()),
      block_size_(std::min<uint64_t>(engine.geometry().region_size(), 1 << 20)),
      clock_(clock ? std::move(clock) : Clock(realtime_now)),
      writes_(writes),
      attributes_(attributes) {}

struct timespec ImageFile::now() const {
  return clock_();
}

struct stat ImageFile::stat() const {
  ImageAttributes a = attributes();
  struct stat st {};
  st.st_ino = 1;  // FUSE_ROOT_ID: the mount's root is the image itself
  st.st_mode = S_IFREG | (a.mode & 07777);
  st.st_nlink = 1;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(size_);
  st.st_blocks = static_cast<blkcnt_t>((size_ + 511) / 512);
  // The I/O size tools such as cp and dd pick up: a region (capped), the unit the engine copies.
  st.st_blksize = static_cast<blksize_t>(block_size_);
  st.st_atim = a.atime;
  st.st_mtim = a.mtime;
  st.st_ctim = a.ctime;
  return st;
}

struct statvfs ImageFile::statfs() const {
  struct statvfs st {};
  // A loop device takes its discard granularity from f_bsize: a region (capped at 1 MiB) makes
  // discards arrive region-aligned, so they mark whole regions valid instead of copying them.
  st.f_bsize = static_cast<unsigned long>(block_size_);
  st.f_frsize = st.f_bsize;
  st.f_blocks = (size_ + st.f_frsize - 1) / st.f_frsize;
  st.f_files = 1;
  st.f_namemax = 255;
  return st;
}

ImageAttributes ImageFile::attributes() const {
  std::lock_guard lock(mu_);
  return attributes_;
}

Status ImageFile::change_attributes(const AttributeChange& change, uid_t caller) {
  std::lock_guard lock(mu_);  // one check-and-change at a time: a chown cannot race a chmod
  CLONEFS_RETURN_IF_ERROR(may_change_ownership(path_, attributes_, caller, change));
  if (change.size && *change.size != size_) {
    return Status::error(EPERM, "cannot resize " + path_ + " to " + std::to_string(*change.size) +
                                    " bytes: its size is the source's (" + std::to_string(size_) +
                                    " bytes)");
  }
  const struct timespec now = this->now();
  auto time_or_now = [&](const struct timespec& t) { return t.tv_nsec == UTIME_NOW ? now : t; };
  ImageAttributes& a = attributes_;
  if (change.mode) a.mode = *change.mode & 07777;
  if (change.uid) a.uid = *change.uid;
  if (change.gid) a.gid = *change.gid;
  if (change.atime) a.atime = time_or_now(*change.atime);
  if (change.mtime) a.mtime = time_or_now(*change.mtime);
  a.ctime = now;
  return Status::ok();
}

Result<KeptBuffer::Lease> ImageFile::read(int64_t offset, size_t size) {
  if (offset < 0) return Status::error(EINVAL, "negative read offset");
  const uint64_t begin = static_cast<uint64_t>(offset);
  const size_t length =
      begin >= size_ ? 0 : static_cast<size_t>(std::min<uint64_t>(size, size_ - begin));
  thread_local KeptBuffer reply_buffer;  // see util/page_buffer.h for why
  KeptBuffer::Lease lease = reply_buffer.lease(length);
  if (begin < size_) CLONEFS_RETURN_IF_ERROR(engine_.read(begin, lease.span()));
  return lease;
}

Result<ImageFile::Direct> ImageFile::direct_read(int64_t offset, size_t size) {
  if (offset < 0) return Status::error(EINVAL, "negative read offset");
  const uint64_t begin = static_cast<uint64_t>(offset);
  if (begin >= size_) return Direct{};
  const size_t length = static_cast<size_t>(std::min<uint64_t>(size, size_ - begin));
  auto fd = engine_.valid_destination(begin, length);
  if (!fd) return fd.status();
  return Direct{*fd, length};
}

Result<size_t> ImageFile::write(int64_t offset, std::span<const std::byte> data) {
  if (offset < 0 || static_cast<uint64_t>(offset) >= size_) {
    return Status::error(EFBIG, "write at offset " + std::to_string(offset) +
                                    " is past the end of " + path_ + " (its size is fixed)");
  }
  // A write straddling the end is cut short there, as on a full device.
  const size_t length =
      static_cast<size_t>(std::min<uint64_t>(data.size(), size_ - static_cast<uint64_t>(offset)));
  CLONEFS_RETURN_IF_ERROR(engine_.write(static_cast<uint64_t>(offset), data.first(length)));
  if (length < data.size() && writes_ == WritesReach::kKernelCacheFirst) {
    return Status::error(EFBIG, "write of " + std::to_string(data.size()) + " bytes at offset " +
                                    std::to_string(offset) + " goes past the end of " + path_ +
                                    " (its size is fixed); the " + std::to_string(length) +
                                    " bytes inside were written");
  }
  return length;
}

Status ImageFile::sync() { return engine_.flush(); }

Status ImageFile::fallocate(int mode, int64_t offset, int64_t length) {
  if (offset < 0 || length <= 0) return Status::error(EINVAL, "bad fallocate range");
  const uint64_t begin = static_cast<uint64_t>(offset);
  const uint64_t end = begin + static_cast<uint64_t>(length);
  const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    return Status::error(
        EOPNOTSUPP, "fallocate mode " + std::to_string(mode) + " is not supported on " + path_);
  }
  if (end > size_ && !keep_size) {
    return Status::error(
        EFBIG, "fallocate past the end of " + path_ + " would grow it (its size is fixed)");
  }
  // Preallocation (every byte of the image is already there), or a punch wholly past the end
  // with KEEP_SIZE: nothing to do.
  if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) || begin >= size_) {
    return Status::ok();
  }
  // Punch and zero-range: what a loop device sends for discard and write-zeroes.
  return engine_.discard(begin, std::min(end, size_) - begin);
}

}  // namespace clonefs
