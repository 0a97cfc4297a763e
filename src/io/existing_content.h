// What an existing destination already holds, so that create never silently writes over an image
// someone meant to keep (a typo in --dest naming a VM disk). As mkfs and pvcreate do: any data
// in a regular file, any signature (filesystem, partition table, LVM, RAID, ...) on a block device.
#pragma once

#include <optional>
#include <string>

#include "util/status.h"

namespace clonefs {

// The rest of a sentence about `path`: "holds an ext4 filesystem", "holds a gpt partition
// table", "already holds data (4096 bytes)". nullopt when nothing would be lost: the path does
// not exist, is an empty or fully sparse file, or a block device without any signature. Only
// reads.
Result<std::optional<std::string>> existing_content(const std::string& path);

}  // namespace clonefs
