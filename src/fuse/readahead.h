// The kernel's readahead on the image's FUSE mount: its backing device's read_ahead_kb.
// A loop device left buffered (losetup's default) reads the image through the page cache, so
// this window decides how large and how many the reads that reach the engine are. FUSE starts
// every mount at 128 KiB and the INIT reply (max_readahead) can only lower it: the only way up
// is sysfs, after the mount exists, which needs root.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/status.h"

namespace clonefs {

// What a mount gets unless `clonefs mount --readahead KIB` says otherwise: 0, the kernel's
// 128 KiB. Measured in the loop suite (bench row 13, README), 4 MiB against 128 KiB over two
// runs of 3 interleaved pairs: sequential reads of a file in ext4 on a buffered loop device
// faster in 5 of 6 pairs, random 4 KiB I/O with fsyncs slower in 5 of 6 (its medians, 0.54x in
// one run and 1.58x in the other, show the noise): a trade, so the kernel's window stays and
// the option serves sequential use.
inline constexpr unsigned kDefaultReadaheadKib = 0;

// The sysfs file holding the readahead of the mount whose st_dev is DEV.
std::string readahead_path(dev_t dev);

// Sets the readahead of the FUSE mount holding IMAGE_PATH (stat'd through the mount, so only
// once it serves requests) to KIB.
Status set_mount_readahead(const std::string& image_path, unsigned kib);

// The readahead of the mount holding PATH, in KiB.
Result<unsigned> mount_readahead(const std::string& path);

}  // namespace clonefs
