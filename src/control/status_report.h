// The clone's status as one JSON object, built in one place for both the live path (the daemon
// answering the status ioctl, control/control_protocol.h) and the offline path (the metadata file
// opened as a reader), and printed as a table by the CLI.
//
// Field names are stable (documented in README.md); add fields, never rename them:
//   image                 string|null  the mounted image path (null offline)
//   metadata              string       metadata path
//   source, destination   string       as recorded at create time (absolute)
//   image_size            integer      bytes
//   region_size           integer      bytes
//   regions_total         integer
//   regions_valid         integer      live: in memory (committed or not); offline: committed
//   regions_uncommitted   integer      valid but not yet committed (0 offline)
//   bytes_valid           integer      bytes of the image in valid regions
//   regions_in_flight     integer      regions being copied right now (0 offline)
//   mounted               bool         offline: true if a clonefs process holds the metadata
//   pid                   integer|null the daemon's pid (live), or the lock holder's (offline)
//   metadata_mode         string       "rw", "ro", "fail" (live); "unmounted" or "in-use" (offline)
//   metadata_mode_reason  string       why the mode is not "rw" ("" otherwise)
//   hydration             object|null  null offline; else:
//     state string ("running", "paused", "complete", "idle"), state_reason string (why idle),
//     paused bool, threshold integer (regions in flight), batch integer (regions per copy),
//     rate_limit integer (bytes/s, 0 = unlimited), rate_bytes_per_s number (measured),
//     eta_seconds number|null, failed_regions integer, failed_sample [integer]
//   hydration_settings    object       the controls: live, in force; offline, saved for the next
//     mount (defaults if none were saved): paused, threshold, batch, rate_limit (as in hydration)
//   complete              bool         every region valid
//   counters              object|null  null offline; else, since the mount:
//     destination_syncs, metadata_commits, regions_copied, regions_skipped, bytes_copied
#pragma once

#include <nlohmann/json.hpp>
#include <string>

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
};

nlohmann::json live_status(const LiveStatusSources& sources);

// Reports the committed state of `metadata_path`, opened as a reader: it writes nothing to the
// database and takes no clonefs lock at all (meta/metadata_lock.h says why), so it works beside a
// mount; SQLite's own locks keep what it reads consistent with a writer.
Result<nlohmann::json> offline_status(const std::string& metadata_path);

// A short aligned table of a status object (from either path).
std::string format_status_table(const nlohmann::json& status);

}  // namespace clonefs
