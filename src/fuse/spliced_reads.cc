#include "fuse/spliced_reads.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace clonefs {
namespace {

// Below this the copy saved is small against a splice's three calls (vmsplice of the header,
// splice in, splice out); libfuse itself copies below two pages. Only reads of 256 KiB and more
// were measured (README Performance, "Zero-copy reads"): 4 KiB reads keep the copying path.
constexpr size_t kSmallestSplice = 64 << 10;

// The most bytes a pipe can be grown to hold here: largest first, as libfuse grows its own
// (F_SETPIPE_SZ up to /proc/sys/fs/pipe-max-size, past it only with CAP_SYS_RESOURCE).
size_t largest_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return 0;
  int got = -1;
  for (int size = 4 << 20; size >= static_cast<int>(kSmallestSplice) && got < 0; size /= 2) {
    got = ::fcntl(fds[0], F_SETPIPE_SZ, size);
  }
  ::close(fds[0]);
  ::close(fds[1]);
  return got < 0 ? 0 : static_cast<size_t>(got);
}

// A pipe of the calling thread's, kept for its next read.
class ThreadPipe {
 public:
  ~ThreadPipe() { reset(); }
  // Makes the pipe hold at least `bytes`; false if it cannot.
  bool hold(size_t bytes) {
    if (fds_[0] < 0 && ::pipe2(fds_, O_CLOEXEC) != 0) return false;
    if (size_ >= bytes) return true;
    const int got = ::fcntl(fds_[0], F_SETPIPE_SZ, static_cast<int>(bytes));
    if (got < 0) return false;
    size_ = static_cast<size_t>(got);
    return size_ >= bytes;
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  bool empty() const {
    int queued = 0;
    return ::ioctl(fds_[0], FIONREAD, &queued) == 0 && queued == 0;
  }
  void reset() {
    for (int& fd : fds_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    size_ = 0;
  }

 private:
  int fds_[2] = {-1, -1};
  size_t size_ = 0;
};

ThreadPipe& thread_pipe() {
  thread_local ThreadPipe pipe;
  return pipe;
}

}  // namespace

SplicedReads::SplicedReads() {
  // libfuse's test (fuse_send_data_iov): the pipe must hold the header, the data and a page
  // for each of the header's iovec, the data buffer and one more.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pipe = largest_pipe();
  const size_t overhead = 3 * page + sizeof(fuse_out_header);
  largest_ = pipe > overhead ? pipe - overhead : 0;
}

Result<bool> SplicedReads::reply(fuse_req_t req, ImageFile& image, size_t size, off_t offset) {
  if (!enabled_.load(std::memory_order_relaxed) || size < kSmallestSplice || size > largest_) {
    return false;
  }
  auto direct = image.direct_read(offset, size);
  if (!direct) return direct.status();
  if (direct->fd < 0 || direct->length < kSmallestSplice) return false;
  ThreadPipe& pipe = thread_pipe();
  if (!pipe.hold(direct->length)) return false;
  // All of it into this thread's pipe first, or an error, as the engine's read: handed the
  // destination itself, libfuse would answer a read failing part way with the bytes before the
  // failure, a short read, which the kernel takes for the end of the file.
  loff_t pos = offset;
  for (size_t filled = 0; filled < direct->length;) {
    ssize_t n = ::splice(direct->fd, &pos, pipe.write_end(), nullptr, direct->length - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;  // 0: the destination is shorter than the image
      pipe.reset();
      if (err == EINVAL && filled == 0) return false;  // no splice from this file: copy
      count_.fetch_add(1, std::memory_order_relaxed);
      return Status::from_errno(err, "read of " + std::to_string(direct->length) +
                                         " bytes at offset " + std::to_string(offset) +
                                         " of the destination (spliced)");
    }
    filled += static_cast<size_t>(n);
  }
  // libfuse moves the pipe's pages on into the reply (a splice from pipe to pipe, no copy), or
  // copies them out where it cannot; either way it reads the pipe empty, unless the reply
  // failed, and then what is left must not start the next one.
  fuse_bufvec data = FUSE_BUFVEC_INIT(direct->length);
  data.buf[0].flags = FUSE_BUF_IS_FD;
  data.buf[0].fd = pipe.read_end();
  count_.fetch_add(1, std::memory_order_relaxed);
  fuse_reply_data(req, &data, static_cast<fuse_buf_copy_flags>(0));
  if (!pipe.empty()) pipe.reset();
  return true;
}

}  // namespace clonefs
