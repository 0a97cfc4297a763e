// The crash trace: every operation that decides what survives a power loss — writes, punches,
// truncations, creations, deletions and syncs of the destination, the metadata database and its
// WAL — in one mutex-ordered sequence, with the workload's markers (operation begun, flush
// acknowledged). Crash states are generated from it offline (see crash_states.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace clonefs::crash {

// The files whose persistence is simulated. The WAL index (-shm) is not one of them: SQLite
// memory-maps it and rebuilds it from the WAL when it is missing, as after a reboot.
enum class TracedFile { kDestination = 0, kDatabase = 1, kWal = 2 };
inline constexpr size_t kTracedFiles = 3;
const char* to_string(TracedFile file);

// What a successful flush promised: the image as it read when the flush was called (source
// overlaid with every write and discard before it) and the regions valid at that moment.
struct Acknowledgement {
  uint64_t last_op = 0;  // the flush's own operation number; every op up to it is covered
  std::vector<std::byte> image;
  std::vector<bool> valid;
};

enum class EventKind {
  kWrite,     // file, offset, bytes
  kPunch,     // file, offset, length: reads zeros afterwards, size unchanged
  kTruncate,  // file, offset = new size
  kCreate,    // file came into existence (not durable until its first sync)
  kDelete,    // file unlinked; `durable` when the directory was synced with it
  kSync,      // file: everything before it in this file is durable
  kOpBegin,   // op: the workload started operation number `op`
  kAck,       // ack: a flush returned OK
};

struct Event {
  EventKind kind = EventKind::kOpBegin;
  TracedFile file = TracedFile::kDestination;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool durable = false;
  std::vector<std::byte> bytes;
  uint64_t op = 0;
  std::shared_ptr<const Acknowledgement> ack;

  static Event write(TracedFile file, uint64_t offset, std::span<const std::byte> bytes);
  static Event punch(TracedFile file, uint64_t offset, uint64_t length);
  static Event truncate(TracedFile file, uint64_t size);
  static Event create(TracedFile file);
  static Event remove(TracedFile file, bool durable);
  static Event sync(TracedFile file);
  static Event op_begin(uint64_t op);
  static Event acknowledged(std::shared_ptr<const Acknowledgement> ack);

 private:
  static Event of(EventKind kind, TracedFile file) {
    Event e;
    e.kind = kind;
    e.file = file;
    return e;
  }
};

// One line for failure messages: "12: write wal @4096 +24".
std::string describe(size_t index, const Event& event);

// Appended to from the engine's threads (user I/O, committer) and SQLite; read once recording
// has stopped.
class Trace {
 public:
  Trace() = default;
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;

  void append(Event event);
  // The events so far, in order. Call once every recorder has stopped.
  std::vector<Event> take();

 private:
  std::mutex mu_;
  std::vector<Event> events_;  // guarded by mu_
};

}  // namespace clonefs::crash
