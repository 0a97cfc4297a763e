// The low-level FUSE operations for a mount whose root is the image file itself (the kernel
// sees a regular file as the mount's root inode, as in qemu-storage-daemon's FUSE export).
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

namespace clonefs {

// The operations table; the session's userdata must be an ImageSession.
const fuse_lowlevel_ops& image_operations();

}  // namespace clonefs
