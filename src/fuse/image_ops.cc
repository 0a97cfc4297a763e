// Thin handlers: each turns one request into one call on the image file (image/image_file.h,
// where the image's rules live) or the hydrator, and replies exactly once. Errors become errnos
// in reply_error() only. No exception crosses into libfuse: run() catches what the standard
// library may throw (allocation) before any reply was sent.
#include "fuse/image_ops.h"

#include <fcntl.h>
#include <sys/statvfs.h>

#include <cstring>
#include <span>

#include "control/control_protocol.h"
#include "daemon/hydration_control.h"
#include "fuse/image_session.h"

namespace clonefs {
namespace {

constexpr double kAttrTimeout = 3600;  // only this process changes the image's attributes

ImageSession& session(fuse_req_t req) {
  return *static_cast<ImageSession*>(fuse_req_userdata(req));
}

// The one place a Status becomes an errno for the kernel.
void reply_error(fuse_req_t req, const char* op, const Status& status) {
  session(req).log().error("{}: {} (errno {})", op, status.message(), status.code());
  fuse_reply_err(req, status.code());
}

template <typename Handler>
void run(fuse_req_t req, const char* op, Handler&& handler) noexcept {
  try {
    handler();
  } catch (const std::exception& e) {
    reply_error(req, op, Status::error(EIO, std::string("internal error: ") + e.what()));
  } catch (...) {
    reply_error(req, op, Status::error(EIO, "internal error"));
  }
}

void reply_attr(fuse_req_t req) {
  struct stat st = session(req).image().stat();
  fuse_reply_attr(req, &st, kAttrTimeout);
}

// Chooses the connection's capabilities. Each choice, and why:
void image_init(void* userdata, fuse_conn_info* conn) {
  auto& s = *static_cast<ImageSession*>(userdata);
  // Requests up to 1 MiB (libfuse derives the kernel's max_pages from max_write): fewer, larger
  // requests for a loop device's I/O; the engine handles any size and alignment.
  conn->max_write = 1 << 20;
  if (s.connection().max_read != 0) conn->max_read = s.connection().max_read;
  // Async reads: the kernel may have several reads (readahead, loop workers) in flight at once;
  // the engine is thread-safe and the session loop is multi-threaded.
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // Async direct I/O: one large O_DIRECT request (loop --direct-io=on) is sent as concurrent
  // pieces instead of one after another.
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  // No writeback cache by default: every write reaches the engine before write() returns. With
  // --writeback-cache the kernel keeps written pages and sends them in batches; its fsync (also
  // the one after each O_SYNC/O_DSYNC write, and the one a loop device sends for a flush) writes
  // them back and waits for the replies before it sends FUSE_FSYNC, so the commit still covers
  // everything fsync acknowledges. The kernel then keeps the file's size itself
  // (fuse/mount_start.h pins it once the mount serves, and after a write past the end).
  if (s.connection().writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  // No automatic invalidation on attribute changes: nobody but us changes the image's data, and
  // open() keeps the page cache (keep_cache).
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Truncation must arrive as setattr, where the fixed size is enforced in one place.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  // Replies are spliced where a read lies wholly in valid regions (fuse/spliced_reads.h):
  // offered by libfuse with its own I/O, and with ours since it has splice_send. Requests are
  // not: the engine needs written bytes in its own buffers anyway. No moving of pages.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_MOVE);
  s.spliced_reads().set_enabled(conn->want & FUSE_CAP_SPLICE_WRITE);
  // File locks stay in the kernel (local semantics suffice for a single-host image).
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  // More background requests (readahead, async direct I/O) than the kernel's default of 12.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  s.log().info("FUSE protocol {}.{}, max_write {}, max_readahead {}, writeback cache {}",
               conn->proto_major, conn->proto_minor, conn->max_write, conn->max_readahead,
               (conn->want & FUSE_CAP_WRITEBACK_CACHE) ? "on" : "off");
}

void image_destroy(void* userdata) {
  static_cast<ImageSession*>(userdata)->log().info("FUSE session destroyed (unmounted)");
}

void image_getattr(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  run(req, "getattr", [&] { reply_attr(req); });
}

// FUSE's setattr flags as one change to the image file's attributes.
AttributeChange attribute_change(const struct stat& attr, int to_set) {
  AttributeChange change;
  if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr.st_mode;
  if (to_set & FUSE_SET_ATTR_UID) change.uid = attr.st_uid;
  if (to_set & FUSE_SET_ATTR_GID) change.gid = attr.st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) change.size = static_cast<uint64_t>(attr.st_size);
  const struct timespec now { 0, UTIME_NOW };
  if (to_set & FUSE_SET_ATTR_ATIME) {
    change.atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now : attr.st_atim;
  }
  if (to_set & FUSE_SET_ATTR_MTIME) {
    change.mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : attr.st_mtim;
  }
  return change;
}

void image_setattr(fuse_req_t req, fuse_ino_t, struct stat* attr, int to_set, fuse_file_info*) {
  run(req, "setattr", [&] {
    Status st = session(req).image().change_attributes(attribute_change(*attr, to_set),
                                                       fuse_req_ctx(req)->uid);
    if (!st) return reply_error(req, "setattr", st);
    reply_attr(req);
  });
}

void image_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  run(req, "open", [&] {
    // Through the daemon, or once hydrated straight to DEST in the kernel (fuse/passthrough.h).
    ImageSession& s = session(req);
    s.passthrough().reply_open(req, fi, [&s] { return s.hydrated_and_committed(); });
  });
}

void image_read(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info*) {
  run(req, "read", [&] {
    ImageSession& s = session(req);
    auto spliced = s.spliced_reads().reply(req, s.image(), size, offset);
    if (!spliced) return reply_error(req, "read", spliced.status());
    if (*spliced) return;
    auto bytes = s.image().read(offset, size);
    if (!bytes) return reply_error(req, "read", bytes.status());
    fuse_reply_buf(req, reinterpret_cast<const char*>(bytes->data()), bytes->span().size());
  });
}

void image_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t offset,
                 fuse_file_info*) {
  run(req, "write", [&] {
    // O_SYNC/O_DSYNC need no flush here: the kernel follows each such write with FUSE_FSYNC
    // (generic_write_sync) before write() returns, and that fsync commits. Flushing here too
    // would sync the destination twice per write
    // (OSyncWrites.AreDurableAndCostOneFlushEach).
    auto written = session(req).image().write(
        offset, std::span(reinterpret_cast<const std::byte*>(data), size));
    if (!written) {
      // The kernel answered write() itself and grew IMAGE for it: the size goes back.
      if (written.status().code() == EFBIG && session(req).connection().writeback_cache)
        session(req).size_refused();
      return reply_error(req, "write", written.status());
    }
    fuse_reply_write(req, *written);
  });
}

void image_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  // close(): nothing is buffered here, and durability is fsync's job.
  fuse_reply_err(req, 0);
}

void image_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  // Counted down after the answer (which frees `req`): a kill in between leaves the count
  // high, never low.
  Passthrough& passthrough = session(req).passthrough();
  fuse_reply_err(req, 0);
  passthrough.released(fi->fh);
}

void image_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  // fsync and fdatasync alike: the engine's flush is already data + commit. Never ENOSYS: the
  // kernel would stop sending fsyncs and report them all as successful.
  run(req, "fsync", [&] {
    Status st = session(req).image().sync();
    if (!st) return reply_error(req, "fsync", st);
    fuse_reply_err(req, 0);
  });
}

void image_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                     fuse_file_info*) {
  run(req, "fallocate", [&] {
    Status st = session(req).image().fallocate(mode, offset, length);
    if (!st) return reply_error(req, "fallocate", st);
    fuse_reply_err(req, 0);
  });
}

void image_statfs(fuse_req_t req, fuse_ino_t) {
  run(req, "statfs", [&] {
    struct statvfs st = session(req).image().statfs();
    fuse_reply_statfs(req, &st);
  });
}

// The control channel (control/control_protocol.h). Unknown requests get ENOTTY, as from any file.
void image_ioctl(fuse_req_t req, fuse_ino_t, unsigned int cmd, void*, fuse_file_info*, unsigned,
                 const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
  run(req, "ioctl", [&] {
    ImageSession& s = session(req);
    if (cmd != kStatusIoctl && cmd != kHydrateIoctl) return void(fuse_reply_err(req, ENOTTY));
    if (!s.may_control(fuse_req_ctx(req)->uid)) return void(fuse_reply_err(req, EACCES));
    if (cmd == kStatusIoctl) {
      std::string json = s.status_json();
      if (json.size() + 1 > out_bufsz) {
        return reply_error(req, "status",
                           Status::error(EOVERFLOW, "status of " + std::to_string(json.size()) +
                                                        " bytes does not fit the reply"));
      }
      return void(fuse_reply_ioctl(req, 0, json.c_str(), json.size() + 1));
    }
    const char* text = static_cast<const char*>(in_buf);
    if (std::string_view request(text, strnlen(text, in_bufsz)); is_plan_command(request)) {
      auto plan = parse_plan_command(request);
      if (!plan) return reply_error(req, "hydration plan", plan.status());
      apply_plan_command(s.hydrator(), *plan);
      s.log().info("hydration plan: {} {} runs", plan->append ? "added" : "set", plan->runs.size());
      return void(fuse_reply_ioctl(req, 0, nullptr, 0));
    }
    auto command = parse_hydrate_command(std::string_view(text, strnlen(text, in_bufsz)));
    if (!command) return reply_error(req, "hydration control", command.status());
    Status steered = steer_hydration(s.hydrator(), s.saved_controls(), *command);
    s.log().info("hydration control: {}", format_hydrate_command(*command));
    if (!steered) return reply_error(req, "hydration control", steered);
    fuse_reply_ioctl(req, 0, nullptr, 0);
  });
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = image_init;
  ops.destroy = image_destroy;
  ops.getattr = image_getattr;
  ops.setattr = image_setattr;
  ops.open = image_open;
  ops.read = image_read;
  ops.write = image_write;
  ops.flush = image_flush;
  ops.release = image_release;
  ops.fsync = image_fsync;
  ops.fallocate = image_fallocate;
  ops.statfs = image_statfs;
  ops.ioctl = image_ioctl;
  // No getxattr: answering it costs a security.capability round trip on every write (see
  // control_protocol.h), a passthrough write's too (the kernel asks before each one, to drop
  // the capability); unanswered (ENOSYS), the kernel sets no_getxattr and stops asking
  // (PassthroughMount.GetxattrIsAskedOnceNotPerWrite).
  return ops;
}

ssize_t image_read_device(int fd, void* buf, size_t size, void* userdata) {
  return static_cast<ImageSession*>(userdata)->passthrough().read(fd, buf, size);
}

ssize_t image_write_device(int fd, iovec* iov, int count, void* userdata) {
  return static_cast<ImageSession*>(userdata)->passthrough().writev(fd, iov, count);
}

// A spliced reply is a read's (fuse/spliced_reads.h), never the INIT or open reply passthrough
// rewrites: it goes out as libfuse made it.
ssize_t image_splice_device(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                            unsigned int flags, void*) {
  return ::splice(fdin, offin, fdout, offout, len, flags);
}

}  // namespace

const fuse_lowlevel_ops& image_operations() {
  static const fuse_lowlevel_ops ops = make_operations();
  return ops;
}

int attach_passthrough(fuse_session* session, ImageSession& state) {
  static const fuse_custom_io io = {.writev = image_write_device,
                                    .read = image_read_device,
                                    .splice_receive = nullptr,
                                    .splice_send = image_splice_device};
  return state.passthrough().attach(session, io);
}

}  // namespace clonefs
