// The parts of the FUSE kernel interface that kernel passthrough needs (Linux 6.9, protocol 7.40),
// which Debian 12's <linux/fuse.h> (7.38) and libfuse 3.14 predate. Their origin is the kernel's
// include/uapi/linux/fuse.h; names are prefixed so a newer system header cannot clash with them.
#pragma once

#include <linux/fuse.h>
#include <linux/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace clonefs::fuse_abi {

// INIT flag bit 37 (FUSE_PASSTHROUGH): bits 32..63 travel in fuse_init_in/out's flags2 word,
// which both sides read only when flags carries FUSE_INIT_EXT (bit 30).
inline constexpr uint32_t kInitExt = 1u << 30;
inline constexpr uint32_t kPassthroughFlags2 = 1u << (37 - 32);

// fuse_init_out as of 7.40: max_stack_depth took the first unused word after flags2. The kernel
// accepts FUSE_PASSTHROUGH only with 1 <= max_stack_depth <= FILESYSTEM_MAX_STACK_DEPTH (2), and
// not together with FUSE_WRITEBACK_CACHE (fs/fuse/inode.c, process_init_reply).
struct InitOut {
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint16_t max_background;
  uint16_t congestion_threshold;
  uint32_t max_write;
  uint32_t time_gran;
  uint16_t max_pages;
  uint16_t map_alignment;
  uint32_t flags2;
  uint32_t max_stack_depth;
  uint32_t unused[6];
};
static_assert(sizeof(InitOut) == 64);
static_assert(offsetof(InitOut, flags2) == 32 && offsetof(InitOut, max_stack_depth) == 36);

// fuse_open_out as of 7.40: the padding word became backing_id.
inline constexpr uint32_t kOpenPassthrough = 1u << 7;  // FOPEN_PASSTHROUGH
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};
static_assert(sizeof(OpenOut) == 16);

// The /dev/fuse ioctls that register a backing file (CAP_SYS_ADMIN) and drop one; the id is the
// ioctl's return value.
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
inline constexpr unsigned kDevIocMagic = 229;
inline constexpr unsigned long kBackingOpen = _IOW(kDevIocMagic, 1, BackingMap);
inline constexpr unsigned long kBackingClose = _IOW(kDevIocMagic, 2, uint32_t);

}  // namespace clonefs::fuse_abi
