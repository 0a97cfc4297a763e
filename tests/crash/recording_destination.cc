#include "crash/recording_destination.h"

#include <vector>

namespace clonefs::crash {

// Writes are recorded after they complete: a write whose record precedes a sync's record was
// in the page cache before that sync was called, so the sync made it durable.
Status RecordingDestination::write_at(uint64_t offset, std::span<const std::byte> buf) {
  Status written = ForwardingDestination::write_at(offset, buf);
  if (written.is_ok()) {
    trace_.append(Event::write(TracedFile::kDestination, offset, buf));
  }
  return written;
}

Status RecordingDestination::punch(uint64_t offset, uint64_t length) {
  Status punched = ForwardingDestination::punch(offset, length);
  if (punched.is_ok()) {
    trace_.append(Event::punch(TracedFile::kDestination, offset, length));
  }
  return punched;
}

// A copy inside the kernel (reflink, copy_file_range) is, for what a crash leaves, a write of the
// source's bytes: dirty in the page cache, or a change to the file's extent map, until the next
// fdatasync, which makes it durable as it does a write. Recorded after it completes, as a write.
Status RecordingDestination::copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                                       CopyMethod method) {
  if (emulate_reflink && method == CopyMethod::kReflink) method = CopyMethod::kCopyFileRange;
  Status copied = ForwardingDestination::copy_from(source, offset, length, method);
  if (!copied.is_ok()) return copied;
  std::vector<std::byte> bytes(length);
  CLONEFS_RETURN_IF_ERROR(source.read_at(offset, bytes));
  trace_.append(Event::write(TracedFile::kDestination, offset, bytes));
  if (copies_ != nullptr) ++*copies_;
  return copied;
}

CopyMethod RecordingDestination::probe_copy(SourceDevice& source) {
  CopyMethod real = ForwardingDestination::probe_copy(source);
  return emulate_reflink && real == CopyMethod::kCopyFileRange ? CopyMethod::kReflink : real;
}

// Recorded before the real fdatasync: a write racing with it (recorded later) then counts as
// not covered, which is the pessimistic reading. Whatever the engine does once sync returns is
// recorded after this event, so no later step can rely on durability the trace does not grant.
Status RecordingDestination::sync() {
  trace_.append(Event::sync(TracedFile::kDestination));
  return ForwardingDestination::sync();
}

}  // namespace clonefs::crash
