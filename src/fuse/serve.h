// Serving one clone as the regular file IMAGE: open the clone (every check), mount, run the
// multi-threaded session loop until unmounted or signalled, then stop hydration and make the
// final commit.
#pragma once

#include <spdlog/logger.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/control_protocol.h"
#include "io/copy_method.h"
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
  unsigned max_threads = 16;              // FUSE worker threads
  std::shared_ptr<spdlog::logger> logger;
  // Called exactly once: OK once the mount is ready, or the error that stopped it. A detached
  // daemon passes the result to its waiting parent through this.
  std::function<void(const Status&)> report;
};

// Returns the process exit code: 0 after a clean unmount and final commit, 1 if opening,
// mounting or the final commit failed.
int serve_image(const ServeOptions& options);

// Refuses an IMAGE path that is a directory, something other than a regular file, or already a
// mount point (also a dead FUSE mount whose daemon is gone), naming the path.
Status check_image_path(const std::string& image_path);

}  // namespace clonefs
