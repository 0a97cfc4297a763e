#include "io/posix_devices.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <utility>
#include <vector>

#include "io/kernel_copy.h"
#include "io/safe_files.h"
#include "io/source_uri.h"
#include "io/unique_fd.h"

namespace clonefs {
namespace {

std::string at(const std::string& path, uint64_t offset) {
  return path + " at offset " + std::to_string(offset);
}

// pread until the buffer is full; EOF before that is EIO (the device is shorter than recorded).
Status pread_full(int fd, const std::string& path, uint64_t offset, std::span<std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(errno, "read " + at(path, offset + done));
    }
    if (n == 0)
      return Status::error(EIO, "read " + at(path, offset + done) + ": unexpected end of file");
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status pwrite_full(int fd, const std::string& path, uint64_t offset,
                   std::span<const std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(errno, "write " + at(path, offset + done));
    }
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

class PosixSource final : public SourceDevice {
 public:
  PosixSource(int fd, std::string path, uint64_t size, bool regular)
      : fd_(fd), path_(std::move(path)), size_(size), regular_(regular) {}
  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    return pread_full(fd_.get(), path_, offset, buf);
  }
  uint64_t size() const override { return size_; }
  const std::string& name() const override { return path_; }
  int file_descriptor() const override { return regular_ ? fd_.get() : -1; }

  Result<std::optional<Extent>> next_data(uint64_t offset) override {
    if (offset >= size_) return std::optional<Extent>();
    if (!regular_) return std::optional<Extent>(Extent{offset, size_});
    off_t data = ::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) return std::optional<Extent>();  // only a hole remains
      if (errno == EINVAL || errno == EOPNOTSUPP)
        return std::optional<Extent>(Extent{offset, size_});
      return Status::from_errno(errno, "SEEK_DATA on " + at(path_, offset));
    }
    off_t hole = ::lseek(fd_.get(), data, SEEK_HOLE);
    if (hole < 0)
      return Status::from_errno(errno, "SEEK_HOLE on " + at(path_, static_cast<uint64_t>(data)));
    uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size_);
    return std::optional<Extent>(Extent{static_cast<uint64_t>(data), end});
  }

 private:
  UniqueFd fd_;
  std::string path_;
  uint64_t size_;
  bool regular_;
};

class PosixDestination final : public DestinationDevice {
 public:
  PosixDestination(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size), block_size_(logical_block_size(fd_.get())) {}
  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    return pread_full(fd_.get(), path_, offset, buf);
  }
  Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
    return pwrite_full(fd_.get(), path_, offset, buf);
  }
  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) return Status::from_errno(errno, "fdatasync " + path_);
    return Status::ok();
  }
  Status punch(uint64_t offset, uint64_t length) override {
    if (length == 0) return Status::ok();
    if (block_size_ == 0) return punch_file(offset, length);
    // A block device zeroes only whole logical blocks (fallocate and BLKZEROOUT refuse anything
    // else with EINVAL): the aligned middle is zeroed by the device, the unaligned head and tail
    // (a partial discard, the end of an image whose size is not a multiple of 512) are written.
    const uint64_t end = offset + length;
    const uint64_t middle_begin = (offset + block_size_ - 1) / block_size_ * block_size_;
    const uint64_t middle_end = end / block_size_ * block_size_;
    if (middle_begin >= middle_end) return write_zeros(offset, length);
    CLONEFS_RETURN_IF_ERROR(zero_blocks(middle_begin, middle_end - middle_begin));
    if (offset < middle_begin) CLONEFS_RETURN_IF_ERROR(write_zeros(offset, middle_begin - offset));
    if (middle_end < end) CLONEFS_RETURN_IF_ERROR(write_zeros(middle_end, end - middle_end));
    return Status::ok();
  }
  uint64_t size() const override { return size_; }
  const std::string& name() const override { return path_; }
  int file_descriptor() const override { return fd_.get(); }
  // A block device takes neither call (both want regular files at both ends).
  CopyMethod probe_copy(SourceDevice& source) override {
    if (block_size_ != 0) return CopyMethod::kReadWrite;
    return probe_kernel_copy(source.file_descriptor(), source.size(), fd_.get());
  }
  Status copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                   CopyMethod method) override {
    const int source_fd = source.file_descriptor();
    if (source_fd < 0 || block_size_ != 0) {
      return Status::error(EOPNOTSUPP, std::string(to_string(method)) + " from " + source.name() +
                                           " into " + range(offset, length) +
                                           ": not two regular files");
    }
    return kernel_copy(method, source_fd, source.name(), fd_.get(), path_, offset, length);
  }

 private:
  // The logical block size of a block device; 0 for a regular file.
  static uint64_t logical_block_size(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISBLK(st.st_mode)) return 0;
    int bytes = 0;
    // Unknown: 4096 is a multiple of every logical block size in use, so the middle it
    // computes is aligned whatever the real one is.
    if (::ioctl(fd, BLKSSZGET, &bytes) != 0 || bytes <= 0) return 4096;
    return static_cast<uint64_t>(bytes);
  }

  std::string range(uint64_t offset, uint64_t length) const {
    return at(path_, offset) + " (" + std::to_string(length) + " bytes)";
  }

  Status punch_file(uint64_t offset, uint64_t length) {
    if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(offset), static_cast<off_t>(length)) == 0)
      return Status::ok();
    // A filesystem without hole punching (or refusing this range) still has to read zeros.
    if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL) {
      return Status::from_errno(errno, "punch hole in " + range(offset, length));
    }
    return write_zeros(offset, length);
  }

  // [offset, offset + length) aligned to the logical block size: the device's own zeroing,
  // unmapping where it can (PUNCH_HOLE only succeeds if the zeroing is offloaded), else
  // BLKZEROOUT, which writes zero pages itself when the device has no offload.
  Status zero_blocks(uint64_t offset, uint64_t length) {
    if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(offset), static_cast<off_t>(length)) == 0)
      return Status::ok();
    if (errno != EOPNOTSUPP && errno != ENOTTY) {
      return Status::from_errno(errno, "punch hole in block device " + range(offset, length));
    }
    uint64_t extent[2] = {offset, length};
    if (::ioctl(fd_.get(), BLKZEROOUT, extent) == 0) return Status::ok();
    if (errno != EOPNOTSUPP && errno != ENOTTY) {
      return Status::from_errno(errno, "BLKZEROOUT on " + range(offset, length));
    }
    return write_zeros(offset, length);
  }

  Status write_zeros(uint64_t offset, uint64_t length) {
    static const std::vector<std::byte> zeros(1 << 20);
    for (uint64_t done = 0; done < length;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), length - done));
      CLONEFS_RETURN_IF_ERROR(write_at(offset + done, std::span(zeros.data(), n)));
      done += n;
    }
    return Status::ok();
  }

  UniqueFd fd_;
  std::string path_;
  uint64_t size_;
  uint64_t block_size_;  // logical block size of a block device, 0 for a regular file
};

}  // namespace

Result<uint64_t> descriptor_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "stat " + path);
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0)
      return Status::from_errno(errno, "BLKGETSIZE64 on " + path);
    return bytes;
  }
  if (S_ISDIR(st.st_mode))
    return Status::error(EISDIR, path + " is a directory, not an image file or block device");
  return Status::error(EINVAL, path + " is neither a regular file nor a block device");
}

Status sync_parent_directory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::absolute(path).parent_path();
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "open directory " + parent.string());
  UniqueFd guard(fd);
  if (::fsync(fd) != 0) return Status::from_errno(errno, "fsync directory " + parent.string());
  return Status::ok();
}

Result<std::unique_ptr<SourceDevice>> open_source(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "open source " + path);
  UniqueFd guard(fd);
  auto size = descriptor_size(fd, path);
  if (!size) return size.status().with_context("source");
  if (*size == 0) return Status::error(EINVAL, "source " + path + " is empty (size 0)");
  struct stat st {};
  ::fstat(fd, &st);
  return std::unique_ptr<SourceDevice>(
      new PosixSource(guard.release(), path, *size, S_ISREG(st.st_mode)));
}

namespace {

Status check_destination_name(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::ok();  // missing: created, or open says why
  if (S_ISLNK(st.st_mode) && st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return Status::error(EPERM, "destination " + path + " is a symbolic link owned by user " +
                                    std::to_string(st.st_uid) +
                                    ", who could aim it at any file: refused");
  }
  return Status::ok();
}

Status check_destination_links(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "stat destination " + path);
  if (S_ISREG(st.st_mode) && st.st_nlink != 1) {
    return Status::error(EPERM, "destination " + path + " has " + std::to_string(st.st_nlink) +
                                    " links (a hard link to another file is never written): "
                                    "refused");
  }
  return Status::ok();
}

Result<UniqueFd> create_destination(const std::string& path, const NewDestination& create) {
  auto entry = DirectoryEntry::open(path);
  if (!entry) return entry.status().with_context("create destination");
  auto fd = entry->create(O_RDWR, create.mode);
  if (!fd) return fd.status().with_context("destination");
  if (::ftruncate(fd->get(), static_cast<off_t>(create.size)) != 0) {
    Status st = Status::from_errno(
        errno, "size destination " + path + " to " + std::to_string(create.size) + " bytes");
    struct stat created {};
    if (::fstat(fd->get(), &created) == 0)
      static_cast<void>(entry->remove_if_same(created.st_dev, created.st_ino));
    return st;
  }
  return fd;
}

}  // namespace

mode_t clone_permissions(const std::string& source) {
  struct stat st {};
  if (is_source_uri(source) || ::stat(source.c_str(), &st) != 0) return 0600;
  return st.st_mode & 0777;
}

Result<std::unique_ptr<DestinationDevice>> open_destination(const std::string& path,
                                                            std::optional<NewDestination> create) {
  CLONEFS_RETURN_IF_ERROR(check_destination_name(path));
  UniqueFd guard(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  bool created = false;
  if (guard.get() < 0 && errno == ENOENT && create) {
    auto made = create_destination(path, *create);
    if (!made) return made.status();
    guard = std::move(*made);
    created = true;
  }
  if (guard.get() < 0) return Status::from_errno(errno, "open destination " + path);
  CLONEFS_RETURN_IF_ERROR(check_destination_links(guard.get(), path));
  const int fd = guard.get();
  auto size = descriptor_size(fd, path);
  if (!size) return size.status().with_context("destination");
  if (created) {
    if (::fsync(fd) != 0) return Status::from_errno(errno, "fsync new destination " + path);
    CLONEFS_RETURN_IF_ERROR(sync_parent_directory(path));
  }
  return std::unique_ptr<DestinationDevice>(new PosixDestination(guard.release(), path, *size));
}

}  // namespace clonefs
