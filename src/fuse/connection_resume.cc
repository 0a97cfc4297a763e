#include "fuse/connection_resume.h"

#include <linux/fuse.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace clonefs {
namespace {

// Added in Linux 6.9 (protocol 7.40); this system's <linux/fuse.h> may predate it.
constexpr int32_t kNotifyResend = 7;

// Never the unique of a kernel request: the kernel counts up from 0 in steps of 2 and marks
// resent requests with bit 63; this is neither reachable nor marked.
constexpr uint64_t kReplayedInitUnique = 0x7ffffffffffff000ULL;

}  // namespace

Result<std::string> receive_init(fuse_session* session) {
  fuse_buf buf{};
  int n;
  do {
    n = fuse_session_receive_buf(session, &buf);
  } while (n == -EINTR);
  if (n <= 0) {
    std::free(buf.mem);
    return Status::error(n == 0 ? ENODEV : -n, "reading FUSE_INIT from /dev/fuse");
  }
  // No splice before INIT: libfuse reads into memory until the connection's flags allow it.
  if ((buf.flags & FUSE_BUF_IS_FD) || static_cast<size_t>(n) < sizeof(fuse_in_header)) {
    std::free(buf.mem);
    return Status::error(EPROTO, "the first FUSE request was not read into memory");
  }
  std::string request(static_cast<const char*>(buf.mem), static_cast<size_t>(n));
  fuse_in_header header;
  std::memcpy(&header, request.data(), sizeof header);
  buf.size = static_cast<size_t>(n);
  fuse_session_process_buf(session, &buf);
  std::free(buf.mem);
  if (header.opcode != FUSE_INIT) {
    return Status::error(EPROTO, "the first FUSE request was opcode " +
                                     std::to_string(header.opcode) + ", not FUSE_INIT");
  }
  return request;
}

Status replay_init(fuse_session* session, const std::string& init_request) {
  fuse_in_header header;
  if (init_request.size() < sizeof header)
    return Status::error(EINVAL, "recorded FUSE_INIT is too short");
  std::memcpy(&header, init_request.data(), sizeof header);
  if (header.opcode != FUSE_INIT) return Status::error(EINVAL, "recorded request is not FUSE_INIT");
  header.unique = kReplayedInitUnique;
  // Aligned, writable memory, as libfuse's own receive buffer is.
  std::vector<uint64_t> storage((init_request.size() + 7) / 8);
  std::memcpy(storage.data(), init_request.data(), init_request.size());
  std::memcpy(storage.data(), &header, sizeof header);
  fuse_buf buf{};
  buf.size = init_request.size();
  buf.mem = storage.data();
  fuse_session_process_buf(session, &buf);
  if (fuse_session_exited(session)) {
    return Status::error(EPROTO, "libfuse refused the replayed FUSE_INIT (see the log)");
  }
  return Status::ok();
}

Status notify_resend(int fuse_fd) {
  fuse_out_header header{};
  header.len = sizeof header;
  header.error = kNotifyResend;
  header.unique = 0;  // a notification, not a reply
  ssize_t n;
  do {
    n = ::write(fuse_fd, &header, sizeof header);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof header)) {
    return Status::from_errno(n < 0 ? errno : EIO, "FUSE_NOTIFY_RESEND on /dev/fuse");
  }
  return Status::ok();
}

bool connection_alive(int fuse_fd) {
  pollfd p{fuse_fd, 0, 0};
  if (::poll(&p, 1, 0) < 0) return false;
  return (p.revents & (POLLERR | POLLNVAL)) == 0;
}

}  // namespace clonefs
