#include "fuse/spliced_reads.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <unistd.h>

namespace clonefs {
namespace {

// Below this a splice's three calls (vmsplice of the header, splice in, splice out) cost more
// than the copy they save; libfuse itself copies below two pages.
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
  fuse_bufvec data = FUSE_BUFVEC_INIT(direct->length);
  data.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  data.buf[0].fd = direct->fd;
  data.buf[0].pos = offset;
  count_.fetch_add(1, std::memory_order_relaxed);
  // A read error of the destination (libfuse's splice from it fails) is answered with its
  // errno, as the engine's path answers one.
  fuse_reply_data(req, &data, static_cast<fuse_buf_copy_flags>(0));
  return true;
}

}  // namespace clonefs
