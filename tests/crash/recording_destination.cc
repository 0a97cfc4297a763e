#include "crash/recording_destination.h"

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

// Recorded before the real fdatasync: a write racing with it (recorded later) then counts as
// not covered, which is the pessimistic reading. Whatever the engine does once sync returns is
// recorded after this event, so no later step can rely on durability the trace does not grant.
Status RecordingDestination::sync() {
  trace_.append(Event::sync(TracedFile::kDestination));
  return ForwardingDestination::sync();
}

}  // namespace clonefs::crash
