// A SQLite VFS over the default one that forwards every call, for test shims that watch or
// change a few (as LevelDB's EnvWrapper does for its Env): the fault VFS fails writes and syncs,
// the crash harness's recording VFS traces them. Locking, the WAL index (xShm*), sector size and
// device characteristics always go straight to the real file, so SQLite behaves as on "unix".
#pragma once

#include <cstdint>

namespace clonefs::testing {

// The calls a shim sees. `tag` is what `opened` returned for the file (nullptr if no hook).
struct VfsShim {
  const char* name = nullptr;  // the VFS name to pass as MetadataOpenOptions::vfs
  // After the real open succeeded; `created`: the file did not exist before it.
  void* (*opened)(const char* path, bool created) = nullptr;
  // Before the real call: a non-zero SQLite result code is returned instead of making it.
  int (*before_write)(void* tag) = nullptr;
  int (*before_sync)(void* tag) = nullptr;
  // After the real call succeeded.
  void (*wrote)(void* tag, const void* buf, int amount, int64_t offset) = nullptr;
  void (*truncated)(void* tag, int64_t size) = nullptr;
  void (*deleted)(const char* path, bool sync_dir) = nullptr;
};

// Registers `shim` (not as the default VFS) over the default VFS; `shim` must live as long as
// the process. Call once per name (e.g. under std::call_once).
void register_vfs_shim(const VfsShim& shim);

}  // namespace clonefs::testing
