// A clone's status, typed: what the daemon answers the status ioctl with (control_protocol.h),
// what `clonefs status` reads from a metadata file offline (status_report.h), and what the CLI
// prints. The JSON form is shaped and read in one place, the to_json/from_json pair below, so a
// field cannot be spelled two ways by two readers.
//
// Field names are stable (documented in README.md, pinned by tests/unit/status_json_test.cc);
// add fields, never rename them:
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
//     eta_seconds number|null, failed_regions integer, failed_sample [integer],
//     priority_regions integer (invalid regions queued first because reads fell through to the
//     source), plan_regions integer (regions of the plan given: --profile, --files),
//     plan_regions_left integer (of those, still invalid)
//     copy_method string ("reflink", "copy_file_range", "read-write": how regions are copied)
//   hydration_settings    object       the controls: live, in force; offline, saved for the next
//     mount (defaults if none were saved): paused, threshold, batch, rate_limit (as in hydration)
//   complete              bool         every region valid
//   counters              object|null  null offline; else, since the mount:
//     destination_syncs, metadata_commits, regions_copied, regions_skipped, bytes_copied,
//     bytes_fell_through (user reads of regions not yet valid, served from the source),
//     regions_shared, bytes_shared (made valid by sharing the source's extents: reflink),
//     bytes_written_through (of bytes_fell_through, whole invalid regions written into the
//     destination and made valid on the way: hydration does not read them again)
//   source_connection     object|null  null offline and for a file or block device; for a remote
//     (NBD) source: state string ("connected", "degraded": fewer connections than wanted,
//     "reconnecting": none, "changed": none, the last server reached was refused as serving another
//     source, last_error says how), connections integer (open now), connections_wanted integer,
//     reconnects integer (since the mount), last_error string (secrets redacted)
//   supervisor            object|null  null offline or without a supervisor (fuse/supervisor.h);
//     else: pid integer (the supervisor's), serving_pid integer (the serving process's, as
//     pid), restarts integer (serving processes started after the first), last_restart
//     string|null (why the last one was started: the dead one's pid and exit code or signal)
//   passthrough           object|null  null offline; else kernel passthrough (fuse/passthrough.h):
//     state string ("off": --no-passthrough, "unavailable": the kernel, the privileges or the
//     destination do not allow it, "waiting": not every region is valid yet, "active": the
//     destination is registered and new opens use it), reason string (why not "active"),
//     passthrough_opens integer (open files the kernel serves from the destination),
//     fuse_opens integer (open files served through the daemon), requests integer (FUSE
//     requests the serving process has read from the kernel, 0 when "off": a passthrough
//     file's reads and writes are not among them), spliced_reads integer (reads through the
//     daemon answered by splicing the destination's pages into the reply: wholly inside valid
//     regions, fuse/spliced_reads.h)
//
// Reading is strict: a missing or mistyped field is an error naming it (StatusFormatError), not
// a default — a zero read for a renamed field would look like a real figure. Fields this build
// does not know are ignored, so an older CLI still reads a newer daemon's status.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace clonefs {

// The hydration controls, as in force or as saved for the next mount.
struct StatusControls {
  bool paused = false;
  uint64_t threshold = 0;
  uint64_t batch = 0;
  uint64_t rate_limit = 0;  // bytes per second; 0: no limit
  bool operator==(const StatusControls&) const = default;
};

// The running hydrator (live only). Its controls sit flat beside the rest in the JSON.
struct StatusHydration {
  std::string state;  // "running", "paused", "complete", "idle"
  std::string state_reason;
  StatusControls controls;
  double rate_bytes_per_s = 0;
  std::optional<double> eta_seconds;  // nullopt: unknown
  uint64_t failed_regions = 0;
  std::vector<uint64_t> failed_sample;
  uint64_t priority_regions = 0;   // invalid regions queued by reads that fell through
  uint64_t plan_regions = 0;       // regions of the plan given (a profile, file hints)
  uint64_t plan_regions_left = 0;  // of those, still invalid
  std::string copy_method;         // io/copy_method.h's spelling
  bool operator==(const StatusHydration&) const = default;
};

// The engine's counters since the mount (live only).
struct StatusCounters {
  uint64_t destination_syncs = 0;
  uint64_t metadata_commits = 0;
  uint64_t regions_copied = 0;
  uint64_t regions_skipped = 0;
  uint64_t bytes_copied = 0;
  uint64_t bytes_fell_through = 0;  // user reads of invalid regions, served from the source
  uint64_t regions_shared = 0;
  uint64_t bytes_shared = 0;
  uint64_t bytes_written_through = 0;  // of bytes_fell_through, written into the destination
  bool operator==(const StatusCounters&) const = default;
};

// A remote source's link (live only).
struct StatusSourceConnection {
  std::string state;
  uint64_t connections = 0;
  uint64_t connections_wanted = 0;
  uint64_t reconnects = 0;
  std::string last_error;
  bool operator==(const StatusSourceConnection&) const = default;
};

// The supervisor holding the connection across restarts of the serving process (live only).
struct StatusSupervisor {
  int pid = 0;
  int serving_pid = 0;
  uint64_t restarts = 0;
  std::optional<std::string> last_restart;  // nullopt before any restart
  bool operator==(const StatusSupervisor&) const = default;
};

// Kernel passthrough of a hydrated clone (live only).
struct StatusPassthrough {
  std::string state;  // "off", "unavailable", "waiting", "active"
  std::string reason;
  uint64_t passthrough_opens = 0;
  uint64_t fuse_opens = 0;
  uint64_t requests = 0;
  uint64_t spliced_reads = 0;
  bool operator==(const StatusPassthrough&) const = default;
};

struct CloneStatus {
  std::optional<std::string> image;  // nullopt offline
  std::string metadata;
  std::string source;
  std::string destination;
  uint64_t image_size = 0;
  uint64_t region_size = 0;
  uint64_t regions_total = 0;
  uint64_t regions_valid = 0;
  uint64_t regions_uncommitted = 0;
  uint64_t bytes_valid = 0;
  uint64_t regions_in_flight = 0;
  bool mounted = false;
  std::optional<int> pid;
  std::string metadata_mode;
  std::string metadata_mode_reason;
  std::optional<StatusHydration> hydration;  // nullopt offline
  StatusControls hydration_settings;
  bool complete = false;
  std::optional<StatusCounters> counters;                   // nullopt offline
  std::optional<StatusSourceConnection> source_connection;  // nullopt offline, local sources
  std::optional<StatusSupervisor> supervisor;               // nullopt offline or unsupervised
  std::optional<StatusPassthrough> passthrough;             // nullopt offline
  bool operator==(const CloneStatus&) const = default;
};

// Thrown by from_json: what() names the field by its path ("hydration.eta_seconds") and what was
// wrong with it.
class StatusFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The one pair (found by nlohmann through ADL: `nlohmann::json j = status;`,
// `j.get<CloneStatus>()`).
void to_json(nlohmann::json& j, const CloneStatus& status);
void from_json(const nlohmann::json& j, CloneStatus& status);

// Parses the status text the daemon sent; EIO naming `origin` and the faulty field.
Result<CloneStatus> parse_status(std::string_view text, const std::string& origin);

}  // namespace clonefs
