// A source served over NBD (nbdkit, qemu-nbd, rbd-nbd...), read with libnbd. The engine sees an
// ordinary SourceDevice; behind it:
// - a pool of connections, each used by one reader at a time, and every read split in pieces of
//   at most `piece_bytes` (fewer if the server's maximum request size is smaller) with all its
//   pieces in flight at once (nbd_aio_pread), so FUSE threads and hydration workers do not queue
//   behind one round trip and one large read is served by several server threads;
// - no holes: NBD block status is not trusted (a server saying "zero" for data would have
//   hydration skip it); zeros are read, and the hydrator's all-zero detection keeps the
//   destination sparse;
// - a lost connection reconnected in the background with backoff; a read waits for a connection
//   up to `read_timeout`, then fails with EIO. A server that answers ESHUTDOWN (nbdkit on
//   SIGTERM) is leaving: every connection to it is closed so it can exit, as if lost; idle
//   connections are probed (a small read, one a second) so this is seen without user reads;
// - a source's identity checked on every connection before any of its bytes is used: the export
//   must have the same size and serve the same fingerprint pieces (io/fingerprint.h) as the
//   first connection did (all of them on a reconnection, a few on the extra connections opened
//   with the first), else the server is refused ("the source changed") and reads wait as in an
//   outage.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "io/devices.h"

namespace clonefs {

struct NbdSourceOptions {
  // Connections kept open (fewer if the server accepts fewer). README "Remote sources" says how
  // the default was measured.
  unsigned connections = 16;
  // How long a read waits for the source to answer (reconnecting if need be) before EIO. Below
  // the kernel's 120 s hung-task warning, so a loop device over the image sees an I/O error
  // rather than hung tasks, and long enough to ride out a server restart.
  std::chrono::milliseconds read_timeout{30000};
  // One connection attempt (TCP or socket connect plus the NBD handshake).
  std::chrono::milliseconds connect_timeout{5000};
  // The source's name in errors and status, if not the URI redacted: the http(s) URL a server
  // clonefs runs itself stands for (io/http_source.h).
  std::string name;
  // Reads are cut into pieces of at most this much, all in flight at once, so one large read (a
  // 1 MiB FUSE read, a 4 MiB hydration copy) is served by several server threads in parallel
  // instead of one: a single 1 MiB request per read gave 320 MB/s fall-through against nbdfuse's
  // 720 over the same nbdkit (bench row 10a, 0 ms). Servers that answer one request at a time
  // with a round trip each want larger pieces (io/http_source.h).
  uint64_t piece_bytes = 256 << 10;
  // An http(s) source read through the host's one server for its URL, with a cache every clone
  // of it shares (--share-source, io/shared_curl_server.h), rather than a server of its own.
  bool share = false;
};

inline constexpr unsigned kMaxNbdConnections = 64;

// Connects to `uri` (a libnbd URI, see source_uri.h) and learns the export's size, maximum request
// size and fingerprint. Errors name the URI redacted, never in clear.
Result<std::unique_ptr<SourceDevice>> open_nbd_source(const std::string& uri,
                                                      const NbdSourceOptions& options);

}  // namespace clonefs
