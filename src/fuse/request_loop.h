// clonefs's own multi-threaded FUSE request loop, in place of libfuse's fuse_session_loop_mt, for
// the memory requests are received into.
//
// A SIGKILL that lands while the kernel copies a request into the serving process fails that
// request with EIO instead of leaving it on the processing list for FUSE_NOTIFY_RESEND
// (fuse/connection_resume.h): fuse_dev_do_read() ends a request whose copy failed with -EIO, and
// the copy (fuse_copy_fill -> iov_iter_get_pages2 -> get_user_pages_fast) fails when a page of
// the receive buffer must be faulted in, because the slow path gives up at once on a fatal
// signal (__get_user_pages). The lockless fast path takes a page whose table entry is present
// and writable whatever signal is pending. libfuse 3.14's fuse_session_receive_buf() reads into
// buf.mem when the caller sets it (it mallocs one only when it is null), so each worker here
// reads into a buffer of its own that is mapped, written and locked (mlock) before the worker's
// first read: the kernel's copy always takes the fast path.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>
#include <spdlog/logger.h>

#include <cstddef>

namespace clonefs {

// What libfuse reads into a receive buffer at most: FUSE_MAX_MAX_PAGES (256) pages for the
// largest write and a 4 KiB header page (fuse_session_new's bufsize in 3.14).
size_t receive_buffer_bytes();

// One worker's receive buffer: its own mapping, kept out of huge pages (a collapse briefly
// unmaps the range) and out of forked children (fork write-protects the parent's pages).
// `resident`: every page written, then locked in memory.
class ReceiveBuffer {
 public:
  explicit ReceiveBuffer(bool resident);
  ~ReceiveBuffer();
  ReceiveBuffer(const ReceiveBuffer&) = delete;
  ReceiveBuffer& operator=(const ReceiveBuffer&) = delete;

  void* data() const { return data_; }  // nullptr if the mapping failed (see error())
  size_t size() const { return size_; }
  bool locked() const { return locked_; }
  int error() const { return error_; }  // errno of the failed mmap, or of mlock if not locked

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
  int error_ = 0;
};

struct RequestLoopOptions {
  unsigned workers = 16;
  // Locked receive buffers: set when a supervisor restarts the serving process, the one case
  // where a request caught by a kill is resent rather than lost with the connection.
  bool resident_buffers = false;
  spdlog::logger* log = nullptr;  // told when the buffers cannot be locked
};

// Starts `workers` threads on the session's descriptor (no cloned descriptors), each receiving
// into its own ReceiveBuffer and processing what it received, until the session exits: unmounted
// (every read then ends with ENODEV), a stop signal (SIGTERM, SIGINT, SIGHUP, caught by the
// handlers of fuse_set_signal_handlers(), which must be installed) or a failed read. Returns as
// fuse_session_loop_mt does: the stop signal's number, else -errno of a failed read, else 0.
int run_request_loop(fuse_session* session, const RequestLoopOptions& options);

}  // namespace clonefs
