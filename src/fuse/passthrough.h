// Kernel passthrough for a fully hydrated clone (FUSE_PASSTHROUGH, Linux 6.9+): an open of IMAGE
// made once every region is valid and committed is answered with a backing id for DEST, and the
// kernel then reads and writes DEST itself, at the raw file's speed. Nothing needs the daemon any
// more: every region reads DEST, and a write to DEST needs no metadata (its region is valid
// already). FSYNC, FLUSH, RELEASE, GETATTR and ioctls still come to the daemon.
//
// How the replies carry what libfuse 3.14 cannot express: the session's I/O goes through
// fuse_session_custom_io() (libfuse 3.14 has it) with the session's own descriptor, and two of
// its writes are rewritten on the way out: the INIT reply gains FUSE_PASSTHROUGH and
// max_stack_depth, and an open reply chosen for passthrough gains FOPEN_PASSTHROUGH and the
// backing id. Everything else is written as libfuse made it. Smaller and sturdier than answering
// INIT or OPEN by hand: libfuse still negotiates and tracks everything it did (its own view of the
// connection stays true), and only fields it leaves zero are set.
//
// The kernel's rules this follows (fs/fuse/iomode.c): an inode open through the page cache (a
// FUSE-path open) refuses a passthrough open, an inode with a passthrough open refuses any other
// kind, and every passthrough open of an inode must use the same backing file; a server that
// breaks them fails the user's open() with EIO. So the daemon counts the live opens of each kind
// (the file handle says which kind an open is, for its release) and registers DEST once per
// connection. The counts and the backing id live in a ledger that outlives a serving process when
// a supervisor keeps the connection (fuse/supervisor.h): a successor goes on from them, and its
// passthrough opens share the backing file its predecessor's still use. Counts are raised before
// an open's reply and lowered after a release's, so a kill between the two can only leave a count
// too high: a stale FUSE-path count keeps passthrough off (the FUSE path serves), never an EIO for
// data already open.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>
#include <spdlog/logger.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace clonefs {

// The counts and the backing id of one FUSE connection, in memory shared by its serving processes
// (a memfd the supervisor keeps), or the process's own when unsupervised.
struct PassthroughLedger {
  std::atomic<int32_t> backing_id{0};  // DEST registered on the connection; 0: not yet
  // What the kernel was told at INIT: 0 not yet, 1 passthrough on, 2 off (see `init_reason`).
  std::atomic<uint32_t> negotiated{0};
  std::atomic<uint32_t> fuse_opens{0};         // live opens served through the daemon
  std::atomic<uint32_t> passthrough_opens{0};  // live opens the kernel serves from DEST
  char init_reason[200] = {};                  // why INIT did not turn passthrough on
};

// What status shows (control/status.h, StatusPassthrough).
struct PassthroughState {
  std::string state;  // "off", "unavailable", "waiting", "active"
  std::string reason;
  uint64_t passthrough_opens = 0;
  uint64_t fuse_opens = 0;
  uint64_t requests = 0;  // read from the kernel by this serving process (0 when off)
};

struct PassthroughOptions {
  bool wanted = true;       // mount --no-passthrough: false
  int destination_fd = -1;  // DEST, as the engine writes it; registered by this descriptor
  uint64_t image_size = 0;  // DEST must be exactly this long (a longer one would show its tail)
  int ledger_fd = -1;       // the supervisor's memfd; -1: a ledger of this process's own
  spdlog::logger* log = nullptr;
};

class Passthrough {
 public:
  explicit Passthrough(const PassthroughOptions& options);
  ~Passthrough();
  Passthrough(const Passthrough&) = delete;
  Passthrough& operator=(const Passthrough&) = delete;

  bool wanted() const { return options_.wanted; }

  // Routes the session's I/O through `io` (whose calls come to read() and writev() below) on its
  // own descriptor, once it is mounted (or given the supervisor's connection) and before INIT is
  // read or replayed. Returns fuse_session_custom_io()'s result.
  int attach(fuse_session* session, const fuse_custom_io& io);

  // The session's I/O (fuse_custom_io): read notes the kernel's INIT, writev rewrites the INIT
  // reply and the open replies reply_open() marked.
  ssize_t read(int fd, void* buf, size_t size);
  ssize_t writev(int fd, iovec* iov, int count);

  // Answers an open: through passthrough if the kernel's rules allow it and `hydrated()` (asked
  // only then) says every region is valid and committed; else through the daemon. Counts it.
  void reply_open(fuse_req_t req, fuse_file_info* fi, const std::function<bool()>& hydrated);
  // After the release of an open reply_open() answered has been answered.
  void released(uint64_t fh);

  PassthroughState state() const;

 private:
  enum class Kind : uint64_t { kFuse = 1, kPassthrough = 2 };  // an open's file handle
  Kind choose(const std::function<bool()>& hydrated, int32_t* backing_id);
  bool register_destination();               // requires mu_
  void unavailable(const std::string& why);  // requires mu_; logs once

  const PassthroughOptions options_;
  int fuse_fd_ = -1;
  PassthroughLedger* ledger_ = nullptr;  // mapped from options_.ledger_fd, or own_
  PassthroughLedger own_;
  std::atomic<uint64_t> init_unique_{~0ULL};  // the kernel's INIT request, as read
  std::atomic<bool> kernel_offers_{false};    // its flags2 carried FUSE_PASSTHROUGH
  std::atomic<uint64_t> requests_{0};
  mutable std::mutex mu_;    // guards the choice of kind with the counts
  std::string unavailable_;  // guarded by mu_: why passthrough cannot be used
};

}  // namespace clonefs
