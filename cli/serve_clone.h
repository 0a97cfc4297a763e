// One serving process's life, top to bottom: the clone opened (every check) with what killed
// predecessors made valid, the hydration plan and settings, IMAGE held, hydration (paused) and the
// profile recording, then IMAGE served over FUSE (fuse/serve.h) until unmounted; the teardown in
// reverse order, ending with the final commit.
#pragma once

#include <string>
#include <vector>

#include "control/control_protocol.h"
#include "fuse/serve.h"
#include "io/copy_method.h"
#include "io/nbd_source.h"

namespace clonefs::cli {

struct CloneServeOptions {
  std::string metadata_path;  // absolute: a detached daemon runs from /
  bool copy_on_read = false;
  // The best way hydration may copy; the best the source and destination allow up to it is used.
  CopyMethod best_copy_method = CopyMethod::kReflink;
  // Given at mount (flags): applied over the controls saved in the metadata, and saved.
  std::vector<HydrateCommand> hydration_controls;
  // Absolute paths, or empty. A profile to hydrate first (refused before mounting if it is of
  // another source); a file to record this mount's profile in (docs/PROFILE.md).
  std::string profile_path;
  std::string record_profile_path;
  bool on_demand_priority = true;  // reads that fall through to the source are hydrated first
  NbdSourceOptions nbd;            // for a source recorded as an NBD URI
  ServeOptions image;              // IMAGE, the session, the log, the report, the supervisor
};

// Returns the process exit code: 0 after a clean unmount and final commit, 1 if opening,
// mounting or the final commit failed.
int serve_clone(const CloneServeOptions& options);

}  // namespace clonefs::cli
