// Where files live in an image: for files of a filesystem mounted from a loop device (or a
// partition of one) over IMAGE, their extents as byte ranges of IMAGE, found with FIEMAP. What
// `clonefs hydrate IMAGE --files PATH...` hydrates first.
#pragma once

#include <string>
#include <vector>

#include "io/devices.h"
#include "util/status.h"

namespace clonefs {

struct FileExtents {
  std::vector<Extent> extents;  // byte ranges of the image, in the files' order and then offset
  uint64_t files = 0;           // regular files looked at (directories are walked)
};

// Refuses (naming the path) a path whose filesystem is not on a loop device backed by `image`,
// and a file whose extents FIEMAP cannot give. Directories are walked recursively without
// leaving their filesystem or following symlinks. Extents not yet allocated (holes, delayed
// allocation flushed first) are not listed.
Result<FileExtents> image_extents_of_files(const std::string& image,
                                           const std::vector<std::string>& paths);

}  // namespace clonefs
