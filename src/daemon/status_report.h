// The clone's status (control/status.h), built in one place for both the live path (the daemon
// answering the status ioctl, control/control_protocol.h) and the offline path (the metadata file
// opened as a reader). The daemon's side: it reads the engine and the hydrator.
#pragma once

#include <string>

#include "control/status.h"
#include "engine/clone_engine.h"
#include "engine/hydrator.h"
#include "meta/metadata_store.h"

namespace clonefs {

// What the live status is read from.
struct LiveStatusSources {
  const std::string& image_path;
  const std::string& metadata_path;
  const CloneRecord& record;
  const CloneEngine& engine;
  const Hydrator& hydrator;
  int pid;
  // The supervisor's pid (0: unsupervised), and its restarts so far.
  int supervisor_pid = 0;
  uint64_t restarts = 0;
  std::string last_restart;  // "" before any
};

CloneStatus live_status(const LiveStatusSources& sources);

// Reports the committed state of `metadata_path`, opened as a reader: it writes nothing to the
// database and takes no clonefs lock at all (meta/metadata_lock.h says why), so it works beside a
// mount; SQLite's own locks keep what it reads consistent with a writer.
Result<CloneStatus> offline_status(const std::string& metadata_path);

}  // namespace clonefs
