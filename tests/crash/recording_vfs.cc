#include "crash/recording_vfs.h"

#include <filesystem>
#include <map>
#include <mutex>

#include "support/vfs_shim.h"

namespace clonefs::crash {
namespace {

// The registered databases. Process-wide because a sqlite3_vfs is; entries are never moved
// while registered, so an open file keeps a pointer to its own.
struct Recorded {
  Trace* trace;
  TracedFile file;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Recorded> files;  // guarded by mu: canonical path -> its trace
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: SQLite may call it at exit
  return *r;
}

std::string canonical(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(path), ec);
  return ec ? path : p.string();
}

Recorded* lookup(const char* name) {
  if (name == nullptr) return nullptr;
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.files.find(canonical(name));
  return it == r.files.end() ? nullptr : &it->second;
}

void* opened(const char* path, bool created) {
  Recorded* recorded = lookup(path);
  if (recorded != nullptr && created) recorded->trace->append(Event::create(recorded->file));
  return recorded;
}
void wrote(void* tag, const void* buf, int amount, int64_t offset) {
  auto* recorded = static_cast<Recorded*>(tag);
  if (recorded == nullptr) return;
  std::span<const std::byte> bytes(static_cast<const std::byte*>(buf), static_cast<size_t>(amount));
  recorded->trace->append(Event::write(recorded->file, static_cast<uint64_t>(offset), bytes));
}
void truncated(void* tag, int64_t size) {
  auto* recorded = static_cast<Recorded*>(tag);
  if (recorded != nullptr)
    recorded->trace->append(Event::truncate(recorded->file, static_cast<uint64_t>(size)));
}
// Recorded before the real sync, as the destination's (see recording_destination.cc).
int before_sync(void* tag) {
  auto* recorded = static_cast<Recorded*>(tag);
  if (recorded != nullptr) recorded->trace->append(Event::sync(recorded->file));
  return 0;
}
// SQLite deletes the WAL when the last connection closes. `sync_dir` says whether it also
// synced the directory, which makes the deletion durable.
void deleted(const char* path, bool sync_dir) {
  if (Recorded* recorded = lookup(path))
    recorded->trace->append(Event::remove(recorded->file, sync_dir));
}

}  // namespace

void RecordingVfs::install() {
  static const testing::VfsShim shim{.name = kName,
                                     .opened = opened,
                                     .before_sync = before_sync,
                                     .wrote = wrote,
                                     .truncated = truncated,
                                     .deleted = deleted};
  static std::once_flag once;
  std::call_once(once, [] { testing::register_vfs_shim(shim); });
}

RecordingVfs::Scope::Scope(const std::string& db_path, Trace& trace) : path_(canonical(db_path)) {
  install();
  std::lock_guard lock(registry().mu);
  registry().files[path_] = {&trace, TracedFile::kDatabase};
  registry().files[path_ + "-wal"] = {&trace, TracedFile::kWal};
}

RecordingVfs::Scope::~Scope() {
  std::lock_guard lock(registry().mu);
  registry().files.erase(path_);
  registry().files.erase(path_ + "-wal");
}

}  // namespace clonefs::crash
