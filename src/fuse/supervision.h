// What a serving process knows of the supervisor that started it (fuse/supervisor.h), and the
// connection the supervisor keeps for its successors.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "image/image_file.h"

namespace clonefs {

// An initialised FUSE connection, as the first serving process handed it over.
struct HeldConnection {
  int fuse_fd = -1;            // the supervisor's descriptor of /dev/fuse (inherited by successors)
  std::string init_request;    // the kernel's FUSE_INIT, as read (fuse/connection_resume.h)
  ImageAttributes attributes;  // IMAGE's, taken before it was mounted over
  bool created_image = false;  // the mount created IMAGE: removed when the mount ends
  uint64_t image_size = 0;     // for the mount's start (SuperviseOptions::start_mount)
  // The file IMAGE was when mounted over: only this very file is removed (io/safe_files.h).
  dev_t image_device = 0;
  ino_t image_inode = 0;
};

struct Supervision {
  int channel = -1;  // to the supervisor (fuse/supervisor_channel.h)
  pid_t supervisor_pid = 0;
  unsigned restarts = 0;     // serving processes started after the first
  std::string last_restart;  // why the last one was started ("" before any)
  // The regions serving processes made valid, which outlive them (engine/surviving_regions.h):
  // a memfd the supervisor holds, inherited by each. -1: none kept.
  int surviving_regions_fd = -1;
  // The destination, opened read-only by the first serving process before anything was written
  // and held by the supervisor, which syncs it before each restart: that reports every write-back
  // error since, including one a killed serving process consumed with its own descriptor
  // (engine/surviving_regions.h). -1 in the first serving process.
  int destination_witness_fd = -1;
  // The connection's passthrough ledger (fuse/passthrough.h): open counts and the backing id,
  // which outlive a serving process. A memfd the supervisor holds; -1: none kept.
  int passthrough_ledger_fd = -1;
  // Set for a restart: serve this connection instead of mounting.
  std::optional<HeldConnection> connection;
};

// The connection a restarted serving process serves instead of mounting; nullptr for the first
// one, and unsupervised.
inline const HeldConnection* inherited_connection(const Supervision* supervision) {
  return supervision != nullptr && supervision->connection ? &*supervision->connection : nullptr;
}

}  // namespace clonefs
