// Zero-copy reads of valid regions: a read wholly inside valid regions is answered by splicing
// the destination's pages into the reply (fuse_reply_data with a descriptor buffer) instead of a
// pread into the daemon's buffer and a writev out of it: one copy of every byte less. Reads that
// touch an invalid region keep the engine's path (image/image_file.h's read).
//
// What libfuse 3.14 does with it (lib/fuse_lowlevel.c, fuse_send_data_iov): it splices only if
// SPLICE_WRITE was negotiated at INIT, and it offers SPLICE_WRITE with a custom io (fuse/
// passthrough.h) only if the io has splice_send; the reply is at least two pages; and its pipe
// (one per thread) can be grown to hold the header, the data and three pages of slack. Otherwise
// it copies the descriptor's bytes into a buffer it allocates and writes that: a read no cheaper
// than the engine's. So a read is spliced here only where libfuse will splice it, and counted.
//
// The bytes go first into a pipe of the thread's own (splice, no copy), so that a read error of
// the destination is this read's error (EIO) and is logged, as on the engine's path; libfuse
// then moves the pipe's pages on into its own pipe behind the reply header (no copy either).
//
// The pipe bounds the size: without CAP_SYS_RESOURCE, F_SETPIPE_SZ grows a pipe only up to
// /proc/sys/fs/pipe-max-size (1 MiB by default), and a 1 MiB read needs 1 MiB plus the header:
// such reads keep the engine's path unless the limit is raised.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "image/image_file.h"

namespace clonefs {

class SplicedReads {
 public:
  // Finds how large a reply a pipe of this process can hold.
  SplicedReads();

  // At INIT: whether the connection splices replies (FUSE_CAP_SPLICE_WRITE in conn->want).
  void set_enabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }

  // Answers the read of `size` bytes at `offset` by splicing if it may (see above). False: not
  // answered, the caller reads through the engine; an error: not answered either, the caller
  // replies with it.
  Result<bool> reply(fuse_req_t req, ImageFile& image, size_t size, off_t offset);

  // Reads answered on the spliced path (with their bytes, or the destination's read error)
  // since the serving process started.
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  size_t largest_ = 0;  // the largest read whose reply fits libfuse's pipe
  std::atomic<bool> enabled_{false};
  std::atomic<uint64_t> count_{0};
};

}  // namespace clonefs
