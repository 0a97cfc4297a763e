#include "support/fault_vfs.h"

#include <sqlite3.h>

#include <mutex>

#include "support/vfs_shim.h"

namespace clonefs::testing {
namespace {

std::atomic<int> g_fail_code{0};
std::atomic<uint64_t> g_injected{0};
std::atomic<void (*)()> g_hook{nullptr};

int injected_failure(void*) {
  if (auto hook = g_hook.load()) hook();
  int code = g_fail_code.load();
  if (code != 0) g_injected.fetch_add(1);
  return code;
}

// A full disk fails fsync with an I/O error, as the kernel reports it.
int injected_sync_failure(void* tag) {
  int code = injected_failure(tag);
  return code == SQLITE_FULL ? SQLITE_IOERR_FSYNC : code;
}

}  // namespace

void FaultVfs::install() {
  static const VfsShim shim{
      .name = kName, .before_write = injected_failure, .before_sync = injected_sync_failure};
  static std::once_flag once;
  std::call_once(once, [] { register_vfs_shim(shim); });
}

void FaultVfs::fail_with(int sqlite_code) { g_fail_code.store(sqlite_code); }

void FaultVfs::on_write_or_sync(void (*hook)()) { g_hook.store(hook); }

uint64_t FaultVfs::injected() { return g_injected.load(); }

}  // namespace clonefs::testing
