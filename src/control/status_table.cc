#include "control/status_table.h"

#include <cstdio>
#include <sstream>

#include "control/units.h"

namespace clonefs {
namespace {

std::string percent(uint64_t part, uint64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

// "threshold 64 regions, batch 16 regions, rate limit none", after the state.
std::string controls_tail(const StatusControls& c) {
  return ", threshold " + std::to_string(c.threshold) + " regions, batch " +
         std::to_string(c.batch) + " regions, rate limit " +
         (c.rate_limit ? format_bytes(c.rate_limit) + "/s" : std::string("none"));
}

std::string hydration_line(const StatusHydration& h) {
  std::string state = h.state;
  if (!h.state_reason.empty()) state += " (" + h.state_reason + ")";
  return state + controls_tail(h.controls);
}

std::string progress_line(const StatusHydration& h) {
  return format_bytes(static_cast<uint64_t>(h.rate_bytes_per_s)) + "/s, ETA " +
         (h.eta_seconds ? format_duration(*h.eta_seconds) : std::string("unknown"));
}

std::string failed_line(const StatusHydration& h) {
  std::string line = std::to_string(h.failed_regions);
  if (!h.failed_sample.empty()) {
    line += " (e.g.";
    for (uint64_t region : h.failed_sample) line += " " + std::to_string(region);
    line += ")";
  }
  return line;
}

std::string counters_line(const StatusCounters& c) {
  return std::to_string(c.destination_syncs) + " destination syncs, " +
         std::to_string(c.metadata_commits) + " commits, " + std::to_string(c.regions_copied) +
         " regions copied (" + format_bytes(c.bytes_copied) + "), " +
         std::to_string(c.regions_shared) + " shared (" + format_bytes(c.bytes_shared) + "), " +
         std::to_string(c.regions_skipped) + " skipped";
}

}  // namespace

std::string format_status_table(const CloneStatus& s) {
  std::ostringstream out;
  auto row = [&](const char* key, const std::string& value) {
    char head[24];
    std::snprintf(head, sizeof head, "%-16s", key);
    out << head << value << '\n';
  };
  if (s.image) row("image", *s.image + " (mounted, pid " + std::to_string(s.pid.value_or(0)) + ")");
  row("metadata", s.metadata);
  row("source", s.source);
  row("destination", s.destination);
  row("size", format_bytes(s.image_size) + " in " + std::to_string(s.regions_total) +
                  " regions of " + format_bytes(s.region_size));
  row("valid", std::to_string(s.regions_valid) + " / " + std::to_string(s.regions_total) +
                   " regions (" + percent(s.regions_valid, s.regions_total) + "), " +
                   format_bytes(s.bytes_valid) + " / " + format_bytes(s.image_size));
  row("metadata mode", s.metadata_mode_reason.empty()
                           ? s.metadata_mode
                           : s.metadata_mode + " (" + s.metadata_mode_reason + ")");
  if (s.hydration) {
    row("in flight", std::to_string(s.regions_in_flight) + " regions, " +
                         std::to_string(s.regions_uncommitted) + " valid but uncommitted");
    row("hydration", hydration_line(*s.hydration));
    row("rate", progress_line(*s.hydration));
    row("failed regions", failed_line(*s.hydration));
    const StatusHydration& h = *s.hydration;
    // Only when something is ordered first, so the usual table stays as it was.
    if (h.priority_regions > 0 || h.plan_regions > 0) {
      row("first", std::to_string(h.priority_regions) + " regions reads wait on; plan " +
                       std::to_string(h.plan_regions - h.plan_regions_left) + " / " +
                       std::to_string(h.plan_regions) + " regions done");
    }
    row("copy method", h.copy_method);
  } else {
    const StatusControls& c = s.hydration_settings;
    row("hydration", std::string(c.paused ? "paused" : "on") + controls_tail(c) +
                         " (saved: the next mount starts so)");
  }
  row("complete", s.complete ? "yes" : "no");
  if (s.counters) row("counters", counters_line(*s.counters));
  if (s.source_connection) {
    const StatusSourceConnection& c = *s.source_connection;
    row("source link", c.state + ", " + std::to_string(c.connections) + "/" +
                           std::to_string(c.connections_wanted) + " connections, " +
                           std::to_string(c.reconnects) + " reconnects" +
                           (c.last_error.empty() ? "" : " (last error: " + c.last_error + ")"));
  }
  if (s.supervisor) {
    row("supervisor",
        "pid " + std::to_string(s.supervisor->pid) + ", serving pid " +
            std::to_string(s.supervisor->serving_pid) + ", " +
            std::to_string(s.supervisor->restarts) + " restarts" +
            (s.supervisor->last_restart ? " (last: " + *s.supervisor->last_restart + ")"
                                        : std::string()));
  }
  if (s.passthrough) {
    const StatusPassthrough& p = *s.passthrough;
    row("passthrough", p.state + ", " + std::to_string(p.passthrough_opens) +
                           " passthrough opens, " + std::to_string(p.fuse_opens) + " FUSE opens" +
                           (p.reason.empty() ? "" : " (" + p.reason + ")"));
  }
  return out.str();
}

}  // namespace clonefs
