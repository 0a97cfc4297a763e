// Serving one clone as the regular file IMAGE: open the clone (every check), mount, run the
// multi-threaded session loop until unmounted or signalled, then stop hydration and make the
// final commit.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/control_protocol.h"
#include "control/metrics_file.h"
#include "fuse/supervision.h"
#include "io/copy_method.h"
#include "io/nbd_source.h"
#include "util/status.h"

namespace clonefs {

struct ServeOptions {
  std::string metadata_path;  // absolute: a detached daemon runs from /
  std::string image_path;  // absolute; created empty if missing (removed again if mounting fails)
  bool copy_on_read = false;
  // The best way hydration may copy; the best the source and destination allow up to it is used.
  CopyMethod best_copy_method = CopyMethod::kReflink;
  // Given at mount (flags): applied over the controls saved in the metadata, and saved.
  std::vector<HydrateCommand> hydration_controls;
  std::vector<std::string> fuse_options;  // extra -o values (allow_other, debug, ...)
  // Absolute paths, or empty. A profile to hydrate first (refused before mounting if it is of
  // another source); a file to record this mount's profile in (docs/PROFILE.md).
  std::string profile_path;
  std::string record_profile_path;
  bool on_demand_priority = true;  // reads that fall through to the source are hydrated first
  unsigned max_threads = 16;       // FUSE worker threads
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
  NbdSourceOptions nbd;  // for a source recorded as an NBD URI
  std::shared_ptr<spdlog::logger> logger;
  // Called exactly once: OK once the mount is ready, or the error that stopped it. A detached
  // daemon passes the result to its waiting parent through this.
  std::function<void(const Status&)> report;
  // Set when a supervisor started this process (fuse/supervisor.h): the first one hands the
  // connection over once the kernel's INIT is answered and leaves unmounting to the supervisor; a
  // restarted one serves the connection it is given instead of mounting.
  const Supervision* supervision = nullptr;
};

// Returns the process exit code: 0 after a clean unmount and final commit, 1 if opening,
// mounting or the final commit failed.
int serve_image(const ServeOptions& options);

}  // namespace clonefs
