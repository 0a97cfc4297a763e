#include "meta/database_files.h"

#include <unistd.h>

#include <initializer_list>

#include "io/safe_files.h"

namespace clonefs {
namespace {

Status remove_with_suffixes(const std::string& path, std::initializer_list<const char*> suffixes) {
  for (const char* suffix : suffixes) {
    CLONEFS_RETURN_IF_ERROR(remove_name(path + suffix));
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

Status check_wal_files(const std::string& path) {
  for (const char* suffix : {"-wal", "-shm"}) {
    Status plain = check_plain_file_or_missing(path + suffix);
    if (!plain) return plain.with_context("metadata " + path);
  }
  return Status::ok();
}

}  // namespace clonefs
