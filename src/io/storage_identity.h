// Which storage a path names, so two paths can be compared by what they write to rather than by
// spelling: a symlink, a hard link, a `..` through a symlinked directory, a bind mount or a loop
// device can all make one file look like two.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace clonefs {

struct FileId {
  dev_t device = 0;  // st_dev: the filesystem holding the file
  ino_t inode = 0;
  bool operator==(const FileId&) const = default;
};

struct StorageIdentity {
  bool block_device = false;
  FileId file;     // files (and anything else that is not a block device): what stat names
  dev_t rdev = 0;  // block devices: the device number
  // An attached loop device: the file it reads and writes (LOOP_GET_STATUS64).
  std::optional<FileId> loop_backing;
};

// stat() of `path`, following symlinks; for a loop device also its backing file. ENOENT when
// nothing is there (yet).
Result<StorageIdentity> storage_identity(const std::string& path);

// Whether writing through one reaches the other: the same file, the same block device, a loop
// device and the file backing it, two loop devices of one file.
bool same_storage(const StorageIdentity& a, const StorageIdentity& b);

// How `a` is `b`, for messages ("same file under another name", "a loop device backed by that
// file", ...); "" when they are different storage.
std::string storage_relation(const StorageIdentity& a, const StorageIdentity& b);

// One path playing one role in a clone ("source", "destination", "metadata", "image").
struct StorageRole {
  std::string role;
  std::string path;
};

// Refuses the first two roles that share storage, naming both paths and how ("destination /x is
// the source /y (same file under another name)"). Paths that do not exist yet are skipped: they
// cannot be anything else. Errors other than ENOENT are reported with the path.
Status require_distinct_storage(const std::vector<StorageRole>& roles);

}  // namespace clonefs
