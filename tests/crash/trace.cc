#include "crash/trace.h"

namespace clonefs::crash {

const char* to_string(TracedFile file) {
  switch (file) {
    case TracedFile::kDestination:
      return "destination";
    case TracedFile::kDatabase:
      return "db";
    case TracedFile::kWal:
      return "wal";
  }
  return "?";
}

std::string describe(size_t index, const Event& event) {
  std::string line = std::to_string(index) + ": ";
  const std::string file = to_string(event.file);
  switch (event.kind) {
    case EventKind::kWrite:
      return line + "write " + file + " @" + std::to_string(event.offset) + " +" +
             std::to_string(event.bytes.size());
    case EventKind::kPunch:
      return line + "punch " + file + " @" + std::to_string(event.offset) + " +" +
             std::to_string(event.length);
    case EventKind::kTruncate:
      return line + "truncate " + file + " to " + std::to_string(event.offset);
    case EventKind::kCreate:
      return line + "create " + file;
    case EventKind::kDelete:
      return line + "delete " + file + (event.durable ? " (directory synced)" : "");
    case EventKind::kSync:
      return line + "sync " + file;
    case EventKind::kOpBegin:
      return line + "begin op " + std::to_string(event.op);
    case EventKind::kAck:
      return line + "ack through op " + std::to_string(event.ack->last_op);
  }
  return line + "?";
}

Event Event::write(TracedFile file, uint64_t offset, std::span<const std::byte> bytes) {
  Event e = of(EventKind::kWrite, file);
  e.offset = offset;
  e.bytes.assign(bytes.begin(), bytes.end());
  return e;
}

Event Event::punch(TracedFile file, uint64_t offset, uint64_t length) {
  Event e = of(EventKind::kPunch, file);
  e.offset = offset;
  e.length = length;
  return e;
}

Event Event::truncate(TracedFile file, uint64_t size) {
  Event e = of(EventKind::kTruncate, file);
  e.offset = size;
  return e;
}

Event Event::create(TracedFile file) { return of(EventKind::kCreate, file); }

Event Event::remove(TracedFile file, bool durable) {
  Event e = of(EventKind::kDelete, file);
  e.durable = durable;
  return e;
}

Event Event::sync(TracedFile file) { return of(EventKind::kSync, file); }

Event Event::op_begin(uint64_t op) {
  Event e = of(EventKind::kOpBegin, TracedFile::kDestination);
  e.op = op;
  return e;
}

Event Event::acknowledged(std::shared_ptr<const Acknowledgement> ack) {
  Event e = of(EventKind::kAck, TracedFile::kDestination);
  e.ack = std::move(ack);
  return e;
}

void Trace::append(Event event) {
  std::lock_guard lock(mu_);
  events_.push_back(std::move(event));
}

std::vector<Event> Trace::take() {
  std::lock_guard lock(mu_);
  return std::move(events_);
}

}  // namespace clonefs::crash
