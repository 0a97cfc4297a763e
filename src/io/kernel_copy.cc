#include "io/kernel_copy.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

namespace clonefs {
namespace {

std::string describe(const std::string& source_name, const std::string& destination_name,
                     uint64_t offset, uint64_t length) {
  return source_name + " to " + destination_name + " at offset " + std::to_string(offset) + " (" +
         std::to_string(length) + " bytes)";
}

}  // namespace

CopyMethod probe_kernel_copy(int source_fd, uint64_t source_size, int destination_fd) {
  if (source_fd < 0 || destination_fd < 0) return CopyMethod::kReadWrite;
  // A zero-length clone from the source's end: the kernel checks the file systems (same one,
  // reflink supported) before it sees there is nothing to do.
  file_clone_range probe{};
  probe.src_fd = source_fd;
  probe.src_offset = source_size;
  probe.src_length = 0;
  probe.dest_offset = 0;
  if (::ioctl(destination_fd, FICLONERANGE, &probe) == 0) return CopyMethod::kReflink;
  loff_t in = static_cast<loff_t>(source_size), out = 0;
  if (::copy_file_range(source_fd, &in, destination_fd, &out, 0, 0) == 0)
    return CopyMethod::kCopyFileRange;
  return CopyMethod::kReadWrite;
}

Status kernel_copy(CopyMethod method, int source_fd, const std::string& source_name,
                   int destination_fd, const std::string& destination_name, uint64_t offset,
                   uint64_t length) {
  if (length == 0) return Status::ok();
  if (method == CopyMethod::kReflink) {
    file_clone_range range{};
    range.src_fd = source_fd;
    range.src_offset = offset;
    range.src_length = length;
    range.dest_offset = offset;
    if (::ioctl(destination_fd, FICLONERANGE, &range) != 0) {
      return Status::from_errno(
          errno, "FICLONERANGE " + describe(source_name, destination_name, offset, length));
    }
    return Status::ok();
  }
  if (method != CopyMethod::kCopyFileRange) {
    return Status::error(EINVAL, std::string(to_string(method)) + " is not a kernel copy (" +
                                     describe(source_name, destination_name, offset, length) + ")");
  }
  // copy_file_range may copy less than asked (a signal, a size cap); 0 is the source's end.
  for (uint64_t done = 0; done < length;) {
    loff_t in = static_cast<loff_t>(offset + done), out = in;
    ssize_t n = ::copy_file_range(source_fd, &in, destination_fd, &out, length - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(errno, "copy_file_range " + describe(source_name, destination_name,
                                                                     offset + done, length - done));
    }
    if (n == 0) {
      return Status::error(
          EIO, "copy_file_range " +
                   describe(source_name, destination_name, offset + done, length - done) +
                   ": unexpected end of the source");
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::ok();
}

bool method_does_not_apply(const Status& failed) {
  switch (failed.code()) {
    case EOPNOTSUPP:
    case EXDEV:
    case EINVAL:
    case ENOSYS:
    case ENOTTY:
      return true;
    default:
      return false;
  }
}

}  // namespace clonefs
