#include "support/vfs_shim.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdlib>

namespace clonefs::testing {
namespace {

// SQLite allocates szOsFile bytes and casts them to sqlite3_file, so `base` comes first and the
// real file lives in the same allocation, right after this struct.
struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  const VfsShim* shim;
  void* tag;
};
constexpr size_t kRealOffset = (sizeof(ShimFile) + 15) & ~size_t{15};

// The VFS each registered shim forwards to: the default one when it was registered.
struct Registered {
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;
  const VfsShim* shim = nullptr;
};

ShimFile* self(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
sqlite3_file* real(sqlite3_file* f) { return self(f)->real; }
Registered& registered(sqlite3_vfs* vfs) { return *static_cast<Registered*>(vfs->pAppData); }
sqlite3_vfs* real(sqlite3_vfs* vfs) { return registered(vfs).real; }

int x_close(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }
int x_read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  return real(f)->pMethods->xRead(real(f), buf, amount, offset);
}
int x_write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  const VfsShim& shim = *self(f)->shim;
  if (shim.before_write)
    if (int code = shim.before_write(self(f)->tag)) return code;
  int rc = real(f)->pMethods->xWrite(real(f), buf, amount, offset);
  if (rc == SQLITE_OK && shim.wrote) shim.wrote(self(f)->tag, buf, amount, offset);
  return rc;
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  int rc = real(f)->pMethods->xTruncate(real(f), size);
  if (rc == SQLITE_OK && self(f)->shim->truncated) self(f)->shim->truncated(self(f)->tag, size);
  return rc;
}
int x_sync(sqlite3_file* f, int flags) {
  const VfsShim& shim = *self(f)->shim;
  if (shim.before_sync)
    if (int code = shim.before_sync(self(f)->tag)) return code;
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

bool exists(const char* path) {
  struct stat st {};
  return path != nullptr && ::stat(path, &st) == 0;
}

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  const VfsShim& shim = *registered(vfs).shim;
  ShimFile* file = self(f);
  file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kRealOffset);
  file->shim = &shim;
  file->tag = nullptr;
  const bool creates = (flags & SQLITE_OPEN_CREATE) && !exists(name);
  int rc = real(vfs)->xOpen(real(vfs), name, file->real, flags, out_flags);
  // SQLite calls xClose only if pMethods is set, and must not reach the real file's methods
  // when its open failed.
  f->pMethods = file->real->pMethods ? &kIoMethods : nullptr;
  if (rc == SQLITE_OK && shim.opened) file->tag = shim.opened(name, creates);
  return rc;
}
int x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  int rc = real(vfs)->xDelete(real(vfs), name, sync_dir);
  if (rc == SQLITE_OK && registered(vfs).shim->deleted)
    registered(vfs).shim->deleted(name, sync_dir != 0);
  return rc;
}
int x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return real(vfs)->xAccess(real(vfs), name, flags, out);
}
int x_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return real(vfs)->xFullPathname(real(vfs), name, size, out);
}
void* x_dl_open(sqlite3_vfs* vfs, const char* name) { return real(vfs)->xDlOpen(real(vfs), name); }
void x_dl_error(sqlite3_vfs* vfs, int size, char* out) {
  real(vfs)->xDlError(real(vfs), size, out);
}
void (*x_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return real(vfs)->xDlSym(real(vfs), handle, symbol);
}
void x_dl_close(sqlite3_vfs* vfs, void* handle) { real(vfs)->xDlClose(real(vfs), handle); }
int x_randomness(sqlite3_vfs* vfs, int size, char* out) {
  return real(vfs)->xRandomness(real(vfs), size, out);
}
int x_sleep(sqlite3_vfs* vfs, int micros) { return real(vfs)->xSleep(real(vfs), micros); }
int x_current_time(sqlite3_vfs* vfs, double* out) {
  return real(vfs)->xCurrentTime(real(vfs), out);
}
int x_get_last_error(sqlite3_vfs* vfs, int size, char* out) {
  return real(vfs)->xGetLastError(real(vfs), size, out);
}
int x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return real(vfs)->xCurrentTimeInt64(real(vfs), out);
}

}  // namespace

void register_vfs_shim(const VfsShim& shim) {
  auto* r = new Registered();  // never freed: SQLite keeps the VFS until the process ends
  r->real = sqlite3_vfs_find(nullptr);
  if (r->real == nullptr) std::abort();
  r->shim = &shim;
  sqlite3_vfs& v = r->vfs;
  v.iVersion = 2;  // the system-call overrides (version 3) are not needed
  v.szOsFile = static_cast<int>(kRealOffset) + r->real->szOsFile;
  v.mxPathname = r->real->mxPathname;
  v.zName = shim.name;
  v.pAppData = r;
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
}

}  // namespace clonefs::testing
