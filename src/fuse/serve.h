// Serving a clone, opened and prepared by the layer above (cli/serve_clone.h), as the regular
// file IMAGE in one serving process: what the FUSE handlers reach, the session mounted (or the
// held connection served), readiness awaited while the request loop runs until unmounted or
// signalled, then the session torn down. FUSE things only: the clone is closed by the caller.
#pragma once

#include <functional>
#include <string>

#include "engine/clone.h"
#include "engine/hydrator.h"
#include "fuse/held_image.h"
#include "fuse/serve_options.h"
#include "util/status.h"

namespace clonefs {

// The clone as the caller prepared it for serving.
struct ServedClone {
  Clone& clone;
  Hydrator& hydrator;             // paused: started by on_ready
  const MountPoint& mount_point;  // IMAGE held (fuse/held_image.h)
  const std::string& metadata_path;
  // Once the mount is ready, before the report and the metrics file: hydration starts.
  std::function<void()> on_ready;
};

// How the session went: its start (mount and handshake), its readiness, the loop's end (< 0: the
// loop failed; > 0: the signal that ended it).
struct SessionEnd {
  Status startup;
  Status ready;
  int loop_rc = 0;
};

// Returns once the session is torn down (unmounted, or the connection handed back).
SessionEnd serve_image(const ServeOptions& options, const ServedClone& served);

}  // namespace clonefs
