#include "exerciser.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace clonefs::exerciser {
namespace {

// A page of a mapping the file cannot fill raises SIGBUS: the handler turns it into a failed
// operation instead of a dead exerciser (one mapping is touched at a time, by one thread).
sigjmp_buf bus_error_jump;
volatile sig_atomic_t touching_mapping = 0;

void on_bus_error(int) {
  if (touching_mapping) siglongjmp(bus_error_jump, 1);
  ::signal(SIGBUS, SIG_DFL);
  ::raise(SIGBUS);
}

uint64_t page_size() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

}  // namespace

Exerciser::Exerciser(std::string path, Model& model, bool direct, uint64_t max_length)
    : path_(std::move(path)), model_(model), direct_(direct) {
  ::signal(SIGBUS, on_bus_error);
  // Rounded up for an aligned O_DIRECT length; at least 1 MiB for reading the whole file back.
  buffer_size_ = std::max<uint64_t>(max_length + kDirectAlignment, 1 << 20);
  buffer_size_ = buffer_size_ / kDirectAlignment * kDirectAlignment;
  void* buffer = nullptr;
  if (::posix_memalign(&buffer, kDirectAlignment, buffer_size_) != 0) {
    open_error_ = "cannot allocate " + std::to_string(buffer_size_) + " bytes";
    return;
  }
  buffer_ = static_cast<uint8_t*>(buffer);
  open_error_ = open_files();
}

Exerciser::~Exerciser() {
  close_files();
  std::free(buffer_);
}

std::string Exerciser::open_files() {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return "open " + path_ + ": " + std::strerror(errno);
  if (direct_) {
    direct_fd_ = ::open(path_.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (direct_fd_ < 0) return "open " + path_ + " with O_DIRECT: " + std::strerror(errno);
  }
  return "";
}

void Exerciser::close_files() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
  fd_ = direct_fd_ = -1;
}

std::string Exerciser::failed(const Operation& op, const char* call, int error) const {
  return format_operation(op) + ": " + call + " failed: " + std::strerror(error) + " (errno " +
         std::to_string(error) + ")";
}

std::string Exerciser::compare(const Operation& op, const uint8_t* found) {
  if (std::memcmp(found, model_.data(op.offset), op.length) == 0) return "";
  return format_operation(op) +
         " read wrong bytes: " + model_.describe_difference(op.offset, found, op.length);
}

std::string Exerciser::run(const Operation& op) {
  ++counts_[static_cast<size_t>(op.kind)];
  std::string failure;
  switch (op.kind) {
    case OpKind::kRead:
      failure = read(op);
      break;
    case OpKind::kWrite:
      failure = write(op);
      break;
    case OpKind::kMapRead:
      failure = map_read(op);
      break;
    case OpKind::kMapWrite:
      failure = map_write(op);
      break;
    case OpKind::kPunchHole:
      failure = fallocate(op, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
      break;
    case OpKind::kZeroRange:
      failure = fallocate(op, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
      break;
    case OpKind::kCopyRange:
      failure = copy_range(op);
      break;
    case OpKind::kFsync:
      failure = sync(op, false);
      break;
    case OpKind::kFdatasync:
      failure = sync(op, true);
      break;
    case OpKind::kReopen:
      close_files();
      failure = open_files();
      if (!failure.empty()) failure = format_operation(op) + ": " + failure;
      break;
    case OpKind::kInvalidate:
      // As fsx -f does after its I/O: the next reads of these pages come from clonefs, not
      // from what the kernel kept of earlier reads and writes.
      if (int error = ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED); error != 0) {
        failure = failed(op, "posix_fadvise", error);
      }
      break;
  }
  if (!op.changes_data() || !failure.empty()) model_.record(op);
  return failure;
}

std::string Exerciser::read(const Operation& op) {
  int fd = op.direct ? direct_fd_ : fd_;
  for (uint64_t done = 0; done < op.length;) {
    ssize_t n = ::pread(fd, buffer_ + done, op.length - done, static_cast<off_t>(op.offset + done));
    if (n < 0) return failed(op, "pread", errno);
    if (n == 0) return format_operation(op) + ": pread: end of file at " + std::to_string(done);
    done += static_cast<uint64_t>(n);
  }
  return compare(op, buffer_);
}

std::string Exerciser::write(const Operation& op) {
  int fd = op.direct ? direct_fd_ : fd_;
  Model::fill_pattern(op, buffer_);
  for (uint64_t done = 0; done < op.length;) {
    ssize_t n =
        ::pwrite(fd, buffer_ + done, op.length - done, static_cast<off_t>(op.offset + done));
    if (n <= 0) return failed(op, "pwrite", n < 0 ? errno : EIO);
    done += static_cast<uint64_t>(n);
  }
  model_.apply(op, op.length);
  return "";
}

std::string Exerciser::map_read(const Operation& op) {
  uint64_t start = op.offset - op.offset % page_size();
  uint64_t span = op.offset + op.length - start;
  void* map = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(start));
  if (map == MAP_FAILED) return failed(op, "mmap", errno);
  const uint8_t* at = static_cast<const uint8_t*>(map) + (op.offset - start);
  std::string failure;
  touching_mapping = 1;
  if (sigsetjmp(bus_error_jump, 1) == 0) {
    std::memcpy(buffer_, at, op.length);
    failure = compare(op, buffer_);
  } else {
    failure = format_operation(op) + ": SIGBUS reading the mapping";
  }
  touching_mapping = 0;
  ::munmap(map, span);
  return failure;
}

std::string Exerciser::map_write(const Operation& op) {
  uint64_t start = op.offset - op.offset % page_size();
  uint64_t span = op.offset + op.length - start;
  void* map =
      ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(start));
  if (map == MAP_FAILED) return failed(op, "mmap", errno);
  Model::fill_pattern(op, buffer_);
  std::string failure;
  touching_mapping = 1;
  if (sigsetjmp(bus_error_jump, 1) == 0) {
    std::memcpy(static_cast<uint8_t*>(map) + (op.offset - start), buffer_, op.length);
  } else {
    failure = format_operation(op) + ": SIGBUS writing the mapping";
  }
  touching_mapping = 0;
  // As fsx does: the pages are written back before the next operation, whatever path it takes.
  if (failure.empty() && ::msync(map, span, MS_SYNC) != 0) failure = failed(op, "msync", errno);
  ::munmap(map, span);
  if (failure.empty()) model_.apply(op, op.length);
  return failure;
}

std::string Exerciser::fallocate(const Operation& op, int mode) {
  if (::fallocate(fd_, mode, static_cast<off_t>(op.offset), static_cast<off_t>(op.length)) != 0) {
    return failed(op, "fallocate", errno);
  }
  model_.apply(op, op.length);
  return "";
}

std::string Exerciser::copy_range(const Operation& op) {
  uint64_t done = 0;
  while (done < op.length) {
    loff_t from = static_cast<loff_t>(op.from + done);
    loff_t to = static_cast<loff_t>(op.offset + done);
    ssize_t n = ::copy_file_range(fd_, &from, fd_, &to, op.length - done, 0);
    if (n < 0) return failed(op, "copy_file_range", errno);
    if (n == 0)
      return format_operation(op) + ": copy_file_range copied 0 bytes at " + std::to_string(done);
    done += static_cast<uint64_t>(n);
  }
  model_.apply(op, done);
  return "";
}

std::string Exerciser::sync(const Operation& op, bool data_only) {
  int rc = data_only ? ::fdatasync(fd_) : ::fsync(fd_);
  return rc == 0 ? "" : failed(op, data_only ? "fdatasync" : "fsync", errno);
}

std::string Exerciser::check_whole_file() {
  // From the mount, not from what the kernel kept of the run (dirty pages are written first).
  if (::fdatasync(fd_) != 0)
    return "fdatasync before reading the whole file back: " + std::string(std::strerror(errno));
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  for (uint64_t offset = 0; offset < model_.size(); offset += buffer_size_) {
    Operation piece{.number = 0,
                    .kind = OpKind::kRead,
                    .offset = offset,
                    .length = std::min(buffer_size_, model_.size() - offset)};
    std::string failure = read(piece);
    if (!failure.empty()) return "reading the whole file back: " + failure;
  }
  return "";
}

}  // namespace clonefs::exerciser
