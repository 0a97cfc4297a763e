// The human form of a status object (status_report.h): one aligned line per topic.
#include <cstdio>
#include <sstream>

#include "control/status_report.h"
#include "control/units.h"

namespace clonefs {
namespace {

uint64_t u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

std::string text(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string percent(uint64_t part, uint64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

std::string controls_line(const nlohmann::json& c) {
  uint64_t limit = u64(c, "rate_limit");
  return std::string(c.value("paused", false) ? "paused" : "on") + ", threshold " +
         std::to_string(u64(c, "threshold")) + " regions, batch " + std::to_string(u64(c, "batch")) +
         " regions, rate limit " + (limit ? format_bytes(limit) + "/s" : std::string("none"));
}

std::string hydration_line(const nlohmann::json& h) {
  // A daemon older than the "state" field only knew paused or not.
  std::string state = text(h, "state");
  if (state.empty()) state = h.value("paused", false) ? "paused" : "running";
  if (std::string reason = text(h, "state_reason"); !reason.empty()) state += " (" + reason + ")";
  uint64_t limit = u64(h, "rate_limit");
  return state + ", threshold " + std::to_string(u64(h, "threshold")) + " regions, batch " +
         std::to_string(u64(h, "batch")) + " regions, rate limit " +
         (limit ? format_bytes(limit) + "/s" : std::string("none"));
}

std::string progress_line(const nlohmann::json& h) {
  double rate = h.value("rate_bytes_per_s", 0.0);
  const auto& eta = h["eta_seconds"];
  return format_bytes(static_cast<uint64_t>(rate)) + "/s, ETA " +
         (eta.is_number() ? format_duration(eta.get<double>()) : std::string("unknown"));
}

std::string failed_line(const nlohmann::json& h) {
  std::string line = std::to_string(u64(h, "failed_regions"));
  const auto& sample = h["failed_sample"];
  if (sample.is_array() && !sample.empty()) {
    line += " (e.g.";
    for (const auto& region : sample) line += " " + std::to_string(region.get<uint64_t>());
    line += ")";
  }
  return line;
}

std::string counters_line(const nlohmann::json& c) {
  return std::to_string(u64(c, "destination_syncs")) + " destination syncs, " +
         std::to_string(u64(c, "metadata_commits")) + " commits, " +
         std::to_string(u64(c, "regions_copied")) + " regions copied (" +
         format_bytes(u64(c, "bytes_copied")) + "), " + std::to_string(u64(c, "regions_skipped")) +
         " skipped";
}

}  // namespace

std::string format_status_table(const nlohmann::json& s) {
  std::ostringstream out;
  auto row = [&](const char* key, const std::string& value) {
    char head[24];
    std::snprintf(head, sizeof head, "%-16s", key);
    out << head << value << '\n';
  };
  const uint64_t total = u64(s, "regions_total"), valid = u64(s, "regions_valid");
  if (s["image"].is_string()) {
    row("image", text(s, "image") + " (mounted, pid " + std::to_string(u64(s, "pid")) + ")");
  }
  row("metadata", text(s, "metadata"));
  row("source", text(s, "source"));
  row("destination", text(s, "destination"));
  row("size", format_bytes(u64(s, "image_size")) + " in " + std::to_string(total) + " regions of " +
                  format_bytes(u64(s, "region_size")));
  row("valid", std::to_string(valid) + " / " + std::to_string(total) + " regions (" +
                   percent(valid, total) + "), " + format_bytes(u64(s, "bytes_valid")) + " / " +
                   format_bytes(u64(s, "image_size")));
  std::string mode = text(s, "metadata_mode");
  std::string reason = text(s, "metadata_mode_reason");
  row("metadata mode", reason.empty() ? mode : mode + " (" + reason + ")");
  if (const auto& h = s["hydration"]; h.is_object()) {
    row("in flight", std::to_string(u64(s, "regions_in_flight")) + " regions, " +
                         std::to_string(u64(s, "regions_uncommitted")) + " valid but uncommitted");
    row("hydration", hydration_line(h));
    row("rate", progress_line(h));
    row("failed regions", failed_line(h));
  } else if (const auto& c = s["hydration_settings"]; c.is_object()) {
    row("hydration", controls_line(c) + " (saved: the next mount starts so)");
  }
  row("complete", s.value("complete", false) ? "yes" : "no");
  if (const auto& c = s["counters"]; c.is_object()) row("counters", counters_line(c));
  return out.str();
}

}  // namespace clonefs
