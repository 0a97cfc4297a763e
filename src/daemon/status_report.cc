#include "daemon/status_report.h"

namespace clonefs {
namespace {

// The last region may be short, so bytes are not simply regions * region_size.
uint64_t valid_bytes(const Geometry& geometry, const RegionBitmap& bitmap) {
  uint64_t bytes = bitmap.valid_count() * geometry.region_size();
  uint64_t last = geometry.region_count() - 1;
  if (bitmap.test(last)) bytes -= geometry.region_size() - geometry.region_extent(last).length();
  return bytes;
}

StatusControls controls_of(const HydrationSettings& c) {
  return {.paused = c.paused, .threshold = c.threshold, .batch = c.batch, .rate_limit = c.rate};
}

StatusHydration hydration_of(const HydrationStatus& h) {
  return {.state = to_string(h.state),
          .state_reason = h.state_reason,
          .controls = controls_of(h.settings),
          .rate_bytes_per_s = h.rate_bytes_per_s,
          .eta_seconds = h.eta_seconds < 0 ? std::nullopt : std::optional<double>(h.eta_seconds),
          .failed_regions = h.failed_regions,
          .failed_sample = h.failed_sample,
          .priority_regions = h.priority_regions,
          .plan_regions = h.plan_regions,
          .plan_regions_left = h.plan_regions_left};
}

StatusCounters counters_of(const EngineCounters& c) {
  return {.destination_syncs = c.destination_syncs.load(),
          .metadata_commits = c.metadata_commits.load(),
          .regions_copied = c.regions_copied.load(),
          .regions_skipped = c.regions_skipped.load(),
          .bytes_copied = c.bytes_copied.load(),
          .bytes_fell_through = c.bytes_fell_through.load(),

          .regions_shared = c.regions_shared.load(),
          .bytes_shared = c.bytes_shared.load(),
          .bytes_written_through = c.bytes_written_through.load()};
}

// What both paths fill alike.
CloneStatus from_record(const std::string& metadata_path, const CloneRecord& record) {
  CloneStatus s;
  s.metadata = metadata_path;
  s.source = record.source_path;
  s.destination = record.destination_path;
  s.image_size = record.image_size;
  s.region_size = record.region_size;
  return s;
}

}  // namespace

CloneStatus live_status(const LiveStatusSources& in) {
  EngineStatus engine = in.engine.status();
  HydrationStatus hydration = in.hydrator.status();
  CloneStatus s = from_record(in.metadata_path, in.record);
  if (!in.image_path.empty()) s.image = in.image_path;
  s.regions_total = engine.regions_total;
  s.regions_valid = engine.regions_valid;
  s.regions_uncommitted = engine.transaction_regions;
  s.bytes_valid = valid_bytes(in.engine.geometry(), in.engine.bitmap());
  s.regions_in_flight = engine.regions_in_flight;
  s.mounted = true;
  if (in.pid > 0) s.pid = in.pid;
  s.metadata_mode = to_string(engine.mode);
  s.metadata_mode_reason = engine.mode_reason;
  s.hydration = hydration_of(hydration);
  s.hydration->copy_method = to_string(in.engine.copy_method());
  s.hydration_settings = controls_of(hydration.settings);
  s.complete = s.regions_valid == s.regions_total;
  s.counters = counters_of(in.engine.counters());
  if (auto link = in.engine.source().connection()) {
    s.source_connection = StatusSourceConnection{.state = link->state,
                                                 .connections = link->connections,
                                                 .connections_wanted = link->connections_wanted,
                                                 .reconnects = link->reconnects,
                                                 .last_error = link->last_error};
  }
  if (in.supervisor_pid > 0) {
    s.supervisor = StatusSupervisor{
        .pid = in.supervisor_pid,
        .serving_pid = in.pid,
        .restarts = in.restarts,
        .last_restart = in.last_restart.empty() ? std::nullopt : std::optional(in.last_restart)};
  }
  return s;
}

Result<CloneStatus> offline_status(const std::string& metadata_path) {
  auto store = MetadataStore::open(metadata_path, {.read_only = true});
  if (!store) return store.status();
  const Geometry& geometry = (*store)->geometry();
  RegionBitmap bitmap(geometry.region_count());
  CLONEFS_RETURN_IF_ERROR((*store)->load(bitmap));
  auto saved = (*store)->load_hydration_settings();
  if (!saved) return saved.status();
  CloneStatus s = from_record(metadata_path, (*store)->record());
  s.regions_total = geometry.region_count();
  s.regions_valid = bitmap.valid_count();
  s.bytes_valid = valid_bytes(geometry, bitmap);
  s.hydration_settings = controls_of(saved->value_or(HydrationSettings{}));
  if (int holder = metadata_holder_pid(metadata_path); holder > 0) s.pid = holder;
  s.mounted = s.pid.has_value();
  s.metadata_mode = s.mounted ? "in-use" : "unmounted";
  if (s.mounted) {
    s.metadata_mode_reason = "mounted by pid " + std::to_string(*s.pid) +
                             ": figures are the last commit; ask the image for live ones";
  }
  s.complete = s.regions_valid == s.regions_total;
  return s;
}

}  // namespace clonefs
