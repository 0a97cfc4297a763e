// The narrow I/O interfaces the engine sees. Everything that touches the source or the
// destination goes through these, so tests can wrap them (see forwarding.h) to inject faults,
// count calls or record a crash trace. All methods are safe to call from many threads at once
// (they map to positional syscalls on a shared descriptor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "io/copy_method.h"
#include "util/status.h"

namespace clonefs {

// A half-open byte range [begin, end).
struct Extent {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t length() const { return end - begin; }
  bool operator==(const Extent&) const = default;
};

// A remote source's link, as status shows it.
struct SourceConnection {
  // "connected", "degraded" (fewer than wanted), "reconnecting", "changed" (none open: the last
  // server reached serves another source and was refused; last_error says how)
  std::string state;
  unsigned connections = 0;  // open now
  unsigned connections_wanted = 0;
  uint64_t reconnects = 0;  // connections re-established since the source was opened
  std::string last_error;   // the last connection failure ("" if none)
};

// The read-only golden image. Never written: implementations open it O_RDONLY.
class SourceDevice {
 public:
  virtual ~SourceDevice() = default;
  // Reads exactly buf.size() bytes at `offset`; a short read is an error (EIO) naming the offset.
  virtual Status read_at(uint64_t offset, std::span<std::byte> buf) = 0;
  virtual uint64_t size() const = 0;
  // The first extent at or after `offset` that may hold data (SEEK_DATA/SEEK_HOLE). Devices
  // that cannot tell report everything from `offset` to the end as data. nullopt: only holes
  // remain.
  virtual Result<std::optional<Extent>> next_data(uint64_t offset) = 0;
  // Path or other name for messages.
  virtual const std::string& name() const = 0;
  // Reads each of `extents` into `bytes`, laid end to end in that order (bytes.size() is their
  // total length). A remote source has them all in flight at once, one round trip instead of one
  // per extent (the fingerprint's 66 pieces, read at every create and mount); by default they
  // are read one by one.
  virtual Status read_extents(std::span<const Extent> extents, std::span<std::byte> bytes) {
    size_t at = 0;
    for (const Extent& extent : extents) {
      CLONEFS_RETURN_IF_ERROR(read_at(extent.begin, bytes.subspan(at, extent.length())));
      at += extent.length();
    }
    return Status::ok();
  }

  // A read hydration makes, no user waiting on it. A source whose server answers one request at
  // a time for every clone on the host (--share-source) lets only a few of these through at once,
  // host-wide, so the reads users wait on never queue behind all of the host's hydration
  // (io/shared_curl_server.h). Elsewhere the same as read_at.
  virtual Status read_for_hydration(uint64_t offset, std::span<std::byte> buf) {
    return read_at(offset, buf);
  }

  // Remote sources only; a local file is always reachable and has no link to report.
  // Whether reads can reach the source now: hydration waits while they cannot.
  virtual bool reachable() const { return true; }
  virtual std::optional<SourceConnection> connection() const { return std::nullopt; }
  // Makes reads waiting for the source to come back fail at once (ECANCELED), and every later
  // one: the clone is shutting down and must not wait out an outage.
  virtual void cancel_waits() {}
  // The open descriptor of a regular file, which the kernel can copy from (io/kernel_copy.h);
  // -1 when there is none (a block device, a remote source): hydration then reads and writes.
  virtual int file_descriptor() const { return -1; }
};

// The local image that becomes the standalone copy.
class DestinationDevice {
 public:
  virtual ~DestinationDevice() = default;
  virtual Status read_at(uint64_t offset, std::span<std::byte> buf) = 0;
  virtual Status write_at(uint64_t offset, std::span<const std::byte> buf) = 0;
  // fdatasync: everything written before the call is durable when it returns OK.
  virtual Status sync() = 0;
  // After it returns, [offset, offset+length) reads zeros; the space may be released.
  virtual Status punch(uint64_t offset, uint64_t length) = 0;
  virtual uint64_t size() const = 0;
  virtual const std::string& name() const = 0;
  // The descriptor it is written through, -1 if none (a test double): a supervisor confirms a
  // dead serving process's syncs through another description of this very file.
  virtual int file_descriptor() const { return -1; }
  // The best way this destination can copy from `source` without the bytes passing through
  // the engine, found by trying calls that change nothing; kReadWrite when there is none.
  virtual CopyMethod probe_copy(SourceDevice& source) {
    (void)source;
    return CopyMethod::kReadWrite;
  }
  // Afterwards [offset, offset + length) reads what `source` holds at the same offsets, copied
  // by `method` (kReflink or kCopyFileRange); durable only after sync(), as a write. EOPNOTSUPP,
  // EXDEV or EINVAL: the method does not apply here (kernel_copy.h), the engine falls back.
  virtual Status copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                           CopyMethod method) {
    (void)source;
    return Status::error(EOPNOTSUPP, std::string(to_string(method)) + " into " + name() +
                                         " at offset " + std::to_string(offset) + " (" +
                                         std::to_string(length) + " bytes): not supported");
  }
};

}  // namespace clonefs
