// What serving IMAGE over FUSE is told by the layer above (fuse/serve.h): IMAGE, the FUSE
// session's choices, the log, whom to report readiness to, and the supervisor if any. Shared with
// the mount's start (fuse/mount_start.h), which a supervisor runs apart from serving.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/metrics_file.h"
#include "fuse/supervision.h"
#include "util/status.h"

namespace clonefs {

struct ServeOptions {
  std::string image_path;  // absolute; created empty if missing (removed again if mounting fails)
  std::vector<std::string> fuse_options;  // extra -o values (allow_other, debug, ...)
  unsigned max_threads = 16;              // FUSE worker threads
  // The kernel's readahead on the mount (fuse/readahead.h), set once it serves; 0: left as is.
  unsigned readahead_kib = 0;
  // The kernel caches writes (fuse/image_ops.cc, image_init); IMAGE's size is pinned once the
  // mount serves.
  bool writeback_cache = false;
  // Kernel passthrough once hydrated (fuse/passthrough.h); --no-passthrough turns it off.
  bool passthrough = true;
  // --metrics-file: kept up to date while serving (control/metrics_file.h), and left holding the
  // committed state once the clone is closed. "" for none.
  std::string metrics_file;
  std::chrono::milliseconds metrics_interval = MetricsFileWriter::kDefaultInterval;
  std::shared_ptr<spdlog::logger> logger;
  // Called exactly once: OK once the mount is ready, or the error that stopped it (serve_image
  // reports its readiness; the caller an error before or at the session's start). A detached
  // daemon passes the result to its waiting parent through this.
  std::function<void(const Status&)> report;
  // Set when a supervisor started this process (fuse/supervisor.h): the first one hands the
  // connection over once the kernel's INIT is answered and leaves unmounting to the supervisor; a
  // restarted one serves the connection it is given instead of mounting.
  const Supervision* supervision = nullptr;
};

}  // namespace clonefs
