#include "meta/database_files.h"

#include <unistd.h>

#include <initializer_list>

namespace clonefs {
namespace {

Status remove_with_suffixes(const std::string& path, std::initializer_list<const char*> suffixes) {
  for (const char* suffix : suffixes) {
    std::string file = path + suffix;
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      return Status::from_errno(errno, "remove " + file);
    }
  }
  return Status::ok();
}

}  // namespace

Status remove_database_files(const std::string& path) {
  return remove_with_suffixes(path, {"", "-wal", "-shm"});
}

Status remove_wal_files(const std::string& path) {
  return remove_with_suffixes(path, {"-wal", "-shm"});
}

}  // namespace clonefs
