// A SQLite VFS shim (support/vfs_shim.h), registered as "clonefs-record", that records
// what SQLite does to a clone's metadata database and its WAL into the crash trace: writes,
// truncations, syncs, creation and deletion. Locking, the WAL index (xShm*), sector size and
// device characteristics go straight to the real file, so SQLite behaves exactly as on "unix".
// Open the metadata through it with MetadataOpenOptions.vfs = RecordingVfs::kName.
#pragma once

#include <string>

#include "crash/trace.h"

namespace clonefs::crash {

class RecordingVfs {
 public:
  static constexpr const char* kName = "clonefs-record";

  // Registers the shim (not as the default VFS). Idempotent, thread-safe.
  static void install();

  // While a Scope lives, the database at `db_path` and its "-wal" are recorded into `trace`.
  // Other files opened through the shim pass through unrecorded.
  class Scope {
   public:
    Scope(const std::string& db_path, Trace& trace);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    std::string path_;
  };
};

}  // namespace clonefs::crash
