// The real source and destination: regular files or block devices, positional syscalls.
#pragma once

#include <memory>
#include <string>

#include "io/devices.h"

namespace clonefs {

// Opens `path` read-only (never for writing). Refuses a directory, a missing or unreadable file
// and an empty one, naming the path.
Result<std::unique_ptr<SourceDevice>> open_source(const std::string& path);

// Opens `path` read-write. If it does not exist and `create_size` is set, creates it sparse at
// that size and makes the new file (and its directory entry) durable before returning, so the
// destination's size never changes afterwards.
Result<std::unique_ptr<DestinationDevice>> open_destination(const std::string& path,
                                                            std::optional<uint64_t> create_size);

// Byte size of an open regular file or block device.
Result<uint64_t> descriptor_size(int fd, const std::string& path);

// fsync of the directory holding `path`, so a newly created entry survives power loss.
Status sync_parent_directory(const std::string& path);

}  // namespace clonefs
