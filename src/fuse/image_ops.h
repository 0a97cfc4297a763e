// The low-level FUSE operations for a mount whose root is the image file itself (the kernel
// sees a regular file as the mount's root inode, as in qemu-storage-daemon's FUSE export).
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

namespace clonefs {

class ImageSession;

// The operations table; the session's userdata must be an ImageSession.
const fuse_lowlevel_ops& image_operations();

// Routes the session's device I/O through its ImageSession's passthrough (fuse/passthrough.h),
// once mounted and before INIT; nothing when passthrough is turned off. 0, or -errno.
int attach_passthrough(fuse_session* session, ImageSession& state);

}  // namespace clonefs
