// A clone's metadata is held by one process at a time — a mount, a `create --force` replacing
// it, a `finalize` — through an exclusive flock on the metadata file. Readers (status) take no
// lock at all: a reader holding even a shared one would make a mount starting beside it fail.
#pragma once

#include <string>

#include "io/unique_fd.h"
#include "util/status.h"

namespace clonefs {

class MetadataLock {
 public:
  // Takes the lock without waiting; EBUSY naming the holder (pid, command) if another has it.
  static Result<MetadataLock> acquire(const std::string& path);

 private:
  explicit MetadataLock(int fd) : fd_(fd) {}
  UniqueFd fd_;  // the lock lives as long as the descriptor
};

// The pid holding the exclusive lock on `path`, or 0 if none. Read from /proc/locks rather than
// by trying the lock, which could make a concurrent mount fail.
int metadata_holder_pid(const std::string& path);

}  // namespace clonefs
