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

}  // namespace clonefs
