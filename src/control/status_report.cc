#include "control/status_report.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>

#include "control/units.h"

namespace clonefs {
namespace {

// Everything a status object holds, whichever path filled it.
struct Snapshot {
  std::string image;  // empty offline
  std::string metadata;
  const CloneRecord* record = nullptr;
  uint64_t regions_total = 0;
  uint64_t regions_valid = 0;
  uint64_t regions_uncommitted = 0;
  uint64_t bytes_valid = 0;
  uint64_t regions_in_flight = 0;
  bool mounted = false;
  int pid = 0;  // 0: none
  std::string mode;
  std::string mode_reason;
  const HydrationStatus* hydration = nullptr;  // live only
  HydrationSettings controls;  // live: in force; offline: saved, for the next mount
  const EngineCounters* counters = nullptr;    // live only
};

// The last region may be short, so bytes are not simply regions * region_size.
uint64_t valid_bytes(const Geometry& geometry, const RegionBitmap& bitmap) {
  uint64_t bytes = bitmap.valid_count() * geometry.region_size();
  uint64_t last = geometry.region_count() - 1;
  if (bitmap.test(last)) bytes -= geometry.region_size() - geometry.region_extent(last).length();
  return bytes;
}

nlohmann::json controls_json(const HydrationSettings& c) {
  return {{"paused", c.paused}, {"threshold", c.threshold}, {"batch", c.batch}, {"rate_limit", c.rate}};
}

nlohmann::json hydration_json(const HydrationStatus& h) {
  return {
      {"state", to_string(h.state)},
      {"state_reason", h.state_reason},
      {"paused", h.settings.paused},
      {"threshold", h.settings.threshold},
      {"batch", h.settings.batch},
      {"rate_limit", h.settings.rate},
      {"rate_bytes_per_s", h.rate_bytes_per_s},
      {"eta_seconds", h.eta_seconds < 0 ? nlohmann::json(nullptr) : nlohmann::json(h.eta_seconds)},
      {"failed_regions", h.failed_regions},
      {"failed_sample", h.failed_sample}};
}

nlohmann::json counters_json(const EngineCounters& c) {
  return {{"destination_syncs", c.destination_syncs.load()},
          {"metadata_commits", c.metadata_commits.load()},
          {"regions_copied", c.regions_copied.load()},
          {"regions_skipped", c.regions_skipped.load()},
          {"bytes_copied", c.bytes_copied.load()}};
}

// The one place the status object is shaped.
nlohmann::json to_json(const Snapshot& s) {
  nlohmann::json j;
  j["image"] = s.image.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.image);
  j["metadata"] = s.metadata;
  j["source"] = s.record->source_path;
  j["destination"] = s.record->destination_path;
  j["image_size"] = s.record->image_size;
  j["region_size"] = s.record->region_size;
  j["regions_total"] = s.regions_total;
  j["regions_valid"] = s.regions_valid;
  j["regions_uncommitted"] = s.regions_uncommitted;
  j["bytes_valid"] = s.bytes_valid;
  j["regions_in_flight"] = s.regions_in_flight;
  j["mounted"] = s.mounted;
  j["pid"] = s.pid > 0 ? nlohmann::json(s.pid) : nlohmann::json(nullptr);
  j["metadata_mode"] = s.mode;
  j["metadata_mode_reason"] = s.mode_reason;
  j["hydration"] = s.hydration ? hydration_json(*s.hydration) : nlohmann::json(nullptr);
  j["hydration_settings"] = controls_json(s.controls);
  j["complete"] = s.regions_valid == s.regions_total;
  j["counters"] = s.counters ? counters_json(*s.counters) : nlohmann::json(nullptr);
  return j;
}

}  // namespace

nlohmann::json live_status(const LiveStatusSources& in) {
  EngineStatus engine = in.engine.status();
  HydrationStatus hydration = in.hydrator.status();
  Snapshot s;
  s.image = in.image_path;
  s.metadata = in.metadata_path;
  s.record = &in.record;
  s.regions_total = engine.regions_total;
  s.regions_valid = engine.regions_valid;
  s.regions_uncommitted = engine.transaction_regions;
  s.bytes_valid = valid_bytes(in.engine.geometry(), in.engine.bitmap());
  s.regions_in_flight = engine.regions_in_flight;
  s.mounted = true;
  s.pid = in.pid;
  s.mode = to_string(engine.mode);
  s.mode_reason = engine.mode_reason;
  s.hydration = &hydration;
  s.controls = hydration.settings;
  s.counters = &in.engine.counters();
  return to_json(s);
}

Result<nlohmann::json> offline_status(const std::string& metadata_path) {
  auto store = MetadataStore::open(metadata_path, {.read_only = true});
  if (!store) return store.status();
  const CloneRecord& record = (*store)->record();
  const Geometry& geometry = (*store)->geometry();
  RegionBitmap bitmap(geometry.region_count());
  CLONEFS_RETURN_IF_ERROR((*store)->load(bitmap));
  Snapshot s;
  s.metadata = metadata_path;
  s.record = &record;
  s.regions_total = geometry.region_count();
  s.regions_valid = bitmap.valid_count();
  s.bytes_valid = valid_bytes(geometry, bitmap);
  auto saved = (*store)->load_hydration_settings();
  if (!saved) return saved.status();
  s.controls = saved->value_or(HydrationSettings{});
  s.pid = metadata_holder_pid(metadata_path);
  s.mounted = s.pid > 0;
  s.mode = s.mounted ? "in-use" : "unmounted";
  if (s.mounted) {
    s.mode_reason = "mounted by pid " + std::to_string(s.pid) +
                    ": figures are the last commit; ask the image for live ones";
  }
  return to_json(s);
}

}  // namespace clonefs
