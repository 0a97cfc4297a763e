// The real source and destination: regular files or block devices, positional syscalls.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "io/devices.h"

namespace clonefs {

// Opens `path` read-only (never for writing). Refuses a directory, a missing or unreadable file
// and an empty one, naming the path.
Result<std::unique_ptr<SourceDevice>> open_source(const std::string& path);

// A destination to create if missing: sparse, `size` bytes, permission bits `mode`.
struct NewDestination {
  uint64_t size = 0;
  mode_t mode = 0600;
};

// Opens `path` read-write. If it does not exist and `create` is set, creates it (O_EXCL, never
// through a symlink: io/safe_files.h) and makes the new file (and its directory entry) durable
// before returning, so the destination's size never changes afterwards. A symlink at `path` is
// followed only if root or the caller owns it (/dev/disk/by-id names are root's); a regular file
// with other links is refused: either could be another user's plant aimed at a file of theirs.
Result<std::unique_ptr<DestinationDevice>> open_destination(const std::string& path,
                                                            std::optional<NewDestination> create);

// The permission bits a clone of `source` gets (its destination, and the image a mount creates):
// the source's own, so a clone is no more readable than its source; 0600 for a remote source,
// whose permissions are unknown (or for a source that cannot be stat'ed).
mode_t clone_permissions(const std::string& source);

// Byte size of an open regular file or block device.
Result<uint64_t> descriptor_size(int fd, const std::string& path);

// fsync of the directory holding `path`, so a newly created entry survives power loss.
Status sync_parent_directory(const std::string& path);

}  // namespace clonefs
