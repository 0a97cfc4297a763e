#include "crash/recording_vfs.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

namespace clonefs::crash {
namespace {

// The shim's file: SQLite allocates szOsFile bytes and casts them to sqlite3_file, so `base`
// comes first and the real (unix) file lives in the same allocation, right after this struct.
struct RecordingFile {
  sqlite3_file base;
  sqlite3_file* real;
  Trace* trace;  // nullptr: not a recorded file
  TracedFile file;
};

constexpr size_t kRealOffset = (sizeof(RecordingFile) + 15) & ~size_t{15};

struct Recorded {
  Trace* trace;
  TracedFile file;
};

// The registered databases. Process-wide because a sqlite3_vfs is.
struct Registry {
  std::mutex mu;
  std::map<std::string, Trace*> databases;  // guarded by mu: canonical db path -> trace
  sqlite3_vfs* real = nullptr;              // "unix", set once by install()
  sqlite3_vfs vfs{};
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

std::optional<Recorded> lookup(const char* name) {
  if (name == nullptr) return std::nullopt;
  std::string path = canonical(name);
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (auto it = r.databases.find(path); it != r.databases.end())
    return Recorded{it->second, TracedFile::kDatabase};
  const std::string wal = "-wal";
  if (path.size() > wal.size() && path.ends_with(wal)) {
    auto it = r.databases.find(path.substr(0, path.size() - wal.size()));
    if (it != r.databases.end()) return Recorded{it->second, TracedFile::kWal};
  }
  return std::nullopt;
}

RecordingFile* self(sqlite3_file* f) { return reinterpret_cast<RecordingFile*>(f); }
sqlite3_file* real(sqlite3_file* f) { return self(f)->real; }

void record(RecordingFile* f, Event event) {
  if (f->trace != nullptr) f->trace->append(std::move(event));
}

int x_close(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }
int x_read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  return real(f)->pMethods->xRead(real(f), buf, amount, offset);
}
int x_write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  int rc = real(f)->pMethods->xWrite(real(f), buf, amount, offset);
  if (rc == SQLITE_OK) {
    std::span<const std::byte> bytes(static_cast<const std::byte*>(buf),
                                     static_cast<size_t>(amount));
    record(self(f), Event::write(self(f)->file, static_cast<uint64_t>(offset), bytes));
  }
  return rc;
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  int rc = real(f)->pMethods->xTruncate(real(f), size);
  if (rc == SQLITE_OK) record(self(f), Event::truncate(self(f)->file, static_cast<uint64_t>(size)));
  return rc;
}
// Recorded before the real sync, as the destination's (see recording_destination.cc).
int x_sync(sqlite3_file* f, int flags) {
  record(self(f), Event::sync(self(f)->file));
  return real(f)->pMethods->xSync(real(f), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int x_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
int x_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
int x_check_reserved_lock(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int x_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int x_device_characteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return real(f)->pMethods->xFetch(real(f), offset, amount, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  return real(f)->pMethods->xUnfetch(real(f), offset, page);
}

const sqlite3_io_methods kIoMethods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

bool exists(const char* name) {
  struct stat st {};
  return name != nullptr && ::stat(name, &st) == 0;
}

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  sqlite3_vfs* unix_vfs = registry().real;
  RecordingFile* file = self(f);
  file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kRealOffset);
  auto recorded = lookup(name);
  file->trace = recorded ? recorded->trace : nullptr;
  file->file = recorded ? recorded->file : TracedFile::kDatabase;
  const bool creates = (flags & SQLITE_OPEN_CREATE) && !exists(name);
  int rc = unix_vfs->xOpen(unix_vfs, name, file->real, flags, out_flags);
  // SQLite calls xClose only if pMethods is set, and must not reach the real file's methods
  // when its open failed.
  f->pMethods = file->real->pMethods ? &kIoMethods : nullptr;
  if (rc == SQLITE_OK && creates) record(file, Event::create(file->file));
  return rc;
}

// SQLite deletes the WAL when the last connection closes. `sync_dir` says whether it also
// synced the directory, which makes the deletion durable.
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  sqlite3_vfs* unix_vfs = registry().real;
  int rc = unix_vfs->xDelete(unix_vfs, name, sync_dir);
  if (rc == SQLITE_OK) {
    if (auto recorded = lookup(name)) {
      recorded->trace->append(Event::remove(recorded->file, sync_dir != 0));
    }
  }
  return rc;
}

int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return registry().real->xAccess(registry().real, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return registry().real->xFullPathname(registry().real, name, size, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) {
  return registry().real->xDlOpen(registry().real, name);
}
void x_dl_error(sqlite3_vfs*, int size, char* out) {
  registry().real->xDlError(registry().real, size, out);
}
void (*x_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return registry().real->xDlSym(registry().real, handle, symbol);
}
void x_dl_close(sqlite3_vfs*, void* handle) { registry().real->xDlClose(registry().real, handle); }
int x_randomness(sqlite3_vfs*, int size, char* out) {
  return registry().real->xRandomness(registry().real, size, out);
}
int x_sleep(sqlite3_vfs*, int micros) { return registry().real->xSleep(registry().real, micros); }
int x_current_time(sqlite3_vfs*, double* out) {
  return registry().real->xCurrentTime(registry().real, out);
}
int x_get_last_error(sqlite3_vfs*, int size, char* out) {
  return registry().real->xGetLastError(registry().real, size, out);
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return registry().real->xCurrentTimeInt64(registry().real, out);
}

}  // namespace

void RecordingVfs::install() {
  static std::once_flag once;
  std::call_once(once, [] {
    Registry& r = registry();
    r.real = sqlite3_vfs_find("unix");
    if (r.real == nullptr) std::abort();  // a non-unix SQLite build: nothing to wrap
    sqlite3_vfs& v = r.vfs;
    v.iVersion = 2;  // the system-call overrides (version 3) are not needed
    v.szOsFile = static_cast<int>(kRealOffset) + r.real->szOsFile;
    v.mxPathname = r.real->mxPathname;
    v.zName = kName;
    v.xOpen = x_open;
    v.xDelete = x_delete;
    v.xAccess = x_access;
    v.xFullPathname = x_full_pathname;
    v.xDlOpen = x_dl_open;
    v.xDlError = x_dl_error;
    v.xDlSym = x_dl_sym;
    v.xDlClose = x_dl_close;
    v.xRandomness = x_randomness;
    v.xSleep = x_sleep;
    v.xCurrentTime = x_current_time;
    v.xGetLastError = x_get_last_error;
    v.xCurrentTimeInt64 = x_current_time_int64;
    sqlite3_vfs_register(&v, /*makeDflt=*/0);
  });
}

RecordingVfs::Scope::Scope(const std::string& db_path, Trace& trace) : path_(canonical(db_path)) {
  install();
  std::lock_guard lock(registry().mu);
  registry().databases[path_] = &trace;
}

RecordingVfs::Scope::~Scope() {
  std::lock_guard lock(registry().mu);
  registry().databases.erase(path_);
}

}  // namespace clonefs::crash
