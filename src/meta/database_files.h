// A WAL-mode SQLite database is up to three files: the database, and beside it the -wal and -shm
// SQLite creates. Whoever removes or replaces the database must remove them too, or SQLite would
// apply a stale WAL to the next database of that name.
#pragma once

#include <string>

#include "util/status.h"

namespace clonefs {

// Removes the database at `path`, then its -wal and -shm. A missing file is not an error; the
// first other failure stops there (a -wal is never removed while its database stays).
Status remove_database_files(const std::string& path);
// Removes only the -wal and -shm beside `path`, the same way.
Status remove_wal_files(const std::string& path);

// Refuses a -wal or -shm beside the database at `path` that is a symlink, a FIFO or a device, or
// a file with other links: SQLite opens them by name and writes (or truncates) them, so another
// user could plant one aimed at a file of theirs (io/safe_files.h). Missing ones are fine.
Status check_wal_files(const std::string& path);

}  // namespace clonefs
