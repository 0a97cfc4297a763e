// A SQLite VFS that forwards to the default one and fails writes and syncs on demand, so tests
// can fail a metadata commit the way a full or broken disk does (SQLITE_FULL, SQLITE_IOERR).
#pragma once

#include <atomic>
#include <cstdint>

namespace clonefs::testing {

class FaultVfs {
 public:
  static constexpr const char* kName = "clonefs-fault";
  // Registers the VFS once (not as the default); pass kName as MetadataOpenOptions::vfs.
  static void install();
  // SQLite result code every xWrite/xSync of a file opened through the VFS returns from now on
  // (SQLITE_FULL, SQLITE_IOERR_WRITE, ...); 0 lets them through.
  static void fail_with(int sqlite_code);
  // Runs inside every xWrite and xSync of a file opened through the VFS, before the real call
  // (and before a failure fail_with() injects); nullptr: none.
  static void on_write_or_sync(void (*hook)());
  // How many calls were failed since the process started.
  static uint64_t injected();
};

}  // namespace clonefs::testing
