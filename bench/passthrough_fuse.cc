// The trivial baseline for issue #6: a FUSE file that passes reads and writes straight to a
// backing file (no regions, no metadata). clonefs's hydrated reads are measured against it.
//   clonefs_passthrough BACKING MOUNTPOINT_FILE [--splice-write] [--splice-read] [--writeback]
// (foreground; unmount with fusermount3 -u). The splice flags measure the lever "splice
// read/write": replies spliced from the backing file, write requests spliced into it;
// --writeback the FUSE writeback cache on any FUSE file (give the file its size with truncate
// after mounting: the kernel starts it at 0).
#define FUSE_USE_VERSION 35
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/page_buffer.h"

namespace {

int backing_fd = -1;
bool splice_write = false;  // reply to reads from the backing fd (FUSE_CAP_SPLICE_WRITE)
bool splice_read = false;   // take write data as a pipe buffer (FUSE_CAP_SPLICE_READ)
bool writeback = false;     // the kernel caches writes (FUSE_CAP_WRITEBACK_CACHE)

fuse_bufvec backing_buffer(size_t size, off_t off) {
  fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = backing_fd;
  buf.buf[0].pos = off;
  return buf;
}

void getattr(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  struct stat st {};
  if (fstat(backing_fd, &st) != 0) return (void)fuse_reply_err(req, errno);
  st.st_ino = FUSE_ROOT_ID;
  fuse_reply_attr(req, &st, 1.0);
}

// Only a truncate to the backing file's size is taken: with the writeback cache the kernel keeps
// the size itself and starts the mount's file at 0, so the size is set once after mounting.
void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  if ((to_set & FUSE_SET_ATTR_SIZE) && ftruncate(backing_fd, attr->st_size) != 0) {
    return (void)fuse_reply_err(req, errno);
  }
  getattr(req, ino, fi);
}

void open_file(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// pread into a kept page-aligned buffer and fuse_reply_buf: the same buffer and reply path as
// clonefs, so the ratio measures clonefs's own work. (fuse_reply_data with an fd buffer, without
// SPLICE_WRITE, read 504 / 919 MB/s cold / warm where this reads 1,491 / 3,948.)
void read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  if (splice_write) {
    fuse_bufvec buf = backing_buffer(size, off);
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    return;
  }
  thread_local clonefs::KeptBuffer reply_buffer;
  clonefs::KeptBuffer::Lease buffer = reply_buffer.lease(size);
  ssize_t n = pread(backing_fd, buffer.data(), size, off);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_buf(req, reinterpret_cast<const char*>(buffer.data()), static_cast<size_t>(n));
}

void write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info*) {
  ssize_t n = pwrite(backing_fd, data, size, off);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_write(req, static_cast<size_t>(n));
}

void write_buf(fuse_req_t req, fuse_ino_t, fuse_bufvec* in, off_t off, fuse_file_info*) {
  fuse_bufvec out = backing_buffer(fuse_buf_size(in), off);
  ssize_t n = fuse_buf_copy(&out, in, FUSE_BUF_SPLICE_NONBLOCK);
  if (n < 0) return (void)fuse_reply_err(req, static_cast<int>(-n));
  fuse_reply_write(req, static_cast<size_t>(n));
}

void fsync_file(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, fdatasync(backing_fd) == 0 ? 0 : errno);
}

void init(void*, fuse_conn_info* conn) {
  conn->max_write = 1 << 20;
  conn->max_read = 1 << 20;
  // The same queue depth clonefs asks for, so the ratio compares the work per request.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  if (splice_write) conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
  if (splice_read) conn->want |= FUSE_CAP_SPLICE_READ;
  if (writeback) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
}

}  // namespace

int main(int argc, char** argv) {
  bool usage_ok = argc >= 3;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--splice-write") == 0) {
      splice_write = true;
    } else if (std::strcmp(argv[i], "--splice-read") == 0) {
      splice_read = true;
    } else if (std::strcmp(argv[i], "--writeback") == 0) {
      writeback = true;
    } else {
      usage_ok = false;
    }
  }
  if (!usage_ok) {
    std::fprintf(
        stderr,
        "usage: %s BACKING MOUNTPOINT_FILE [--splice-write] [--splice-read] [--writeback]\n",
        argv[0]);
    return 2;
  }
  backing_fd = ::open(argv[1], O_RDWR);
  if (backing_fd < 0) return std::perror(argv[1]), 1;
  fuse_lowlevel_ops ops{};
  ops.init = init;
  ops.getattr = getattr;
  ops.setattr = setattr;
  ops.open = open_file;
  ops.read = read;
  ops.write = write;
  ops.fsync = fsync_file;
  if (splice_read) ops.write_buf = write_buf;
  char* fuse_argv[] = {argv[0], const_cast<char*>("-omax_read=1048576")};
  fuse_args args = FUSE_ARGS_INIT(2, fuse_argv);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (se == nullptr || fuse_session_mount(se, argv[2]) != 0) return 1;
  fuse_set_signal_handlers(se);
  fuse_loop_config config{};
  config.max_idle_threads = 10;
  int rc = fuse_session_loop_mt(se, &config);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  return rc == 0 ? 0 : 1;
}
