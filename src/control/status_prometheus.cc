#include "control/status_prometheus.h"

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <utility>

namespace clonefs {
namespace {

// A label value's escapes: backslash, double quote and line feed (a path may hold any of them).
std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  return buf;
}

using Labels = std::initializer_list<std::pair<const char*, std::string>>;

class Exposition {
 public:
  explicit Exposition(const CloneStatus& s)
      : common_("image=\"" + escape_label(s.image.value_or("")) + "\",metadata=\"" +
                escape_label(s.metadata) + "\"") {}

  // One family: its HELP and TYPE, then its samples (written by sample()).
  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ += std::string("# HELP clonefs_") + name + " " + help + "\n";
    out_ += std::string("# TYPE clonefs_") + name + " " + type + "\n";
  }
  void sample(double value, Labels extra = {}) {
    out_ += "clonefs_" + name_ + "{" + common_;
    for (const auto& [key, label] : extra)
      out_ += std::string(",") + key + "=\"" + escape_label(label) + "\"";
    out_ += "} " + format_value(value) + "\n";
  }
  void gauge(const char* name, const char* help, double value) {
    family(name, "gauge", help);
    sample(value);
  }
  void counter(const char* name, const char* help, uint64_t value) {
    family(name, "counter", help);
    sample(static_cast<double>(value));
  }
  // A state set: one sample per possible state, 1 for the current one.
  void states(const char* name, const char* help, const char* label,
              std::initializer_list<const char*> all, const std::string& current) {
    family(name, "gauge", help);
    for (const char* state : all) sample(current == state ? 1 : 0, {{label, state}});
  }
  std::string text() && { return std::move(out_); }

 private:
  const std::string common_;
  std::string name_;
  std::string out_;
};

double number(uint64_t value) { return static_cast<double>(value); }

}  // namespace

std::string format_status_prometheus(const CloneStatus& s) {
  Exposition e(s);
  e.family("info", "gauge", "The clone's source and destination, as recorded at create.");
  e.sample(1, {{"source", s.source}, {"destination", s.destination}});
  e.gauge("image_size_bytes", "Size of the image in bytes.", number(s.image_size));
  e.gauge("region_size_bytes", "Size of one region in bytes.", number(s.region_size));
  e.gauge("regions", "Regions in the image.", number(s.regions_total));
  e.gauge("regions_valid", "Regions valid (live: in memory, committed or not; offline: committed).",
          number(s.regions_valid));
  e.gauge("regions_uncommitted", "Regions valid but not yet committed.",
          number(s.regions_uncommitted));
  e.gauge("regions_in_flight", "Regions being copied right now.", number(s.regions_in_flight));
  e.gauge("valid_bytes", "Bytes of the image in valid regions.", number(s.bytes_valid));
  e.gauge("mounted", "1 if a clonefs daemon holds the clone.", s.mounted ? 1 : 0);
  e.gauge("complete", "1 once every region is valid: the destination alone is the image.",
          s.complete ? 1 : 0);
  e.states("metadata_mode",
           "The metadata's mode: rw, ro (a commit failed), fail (every I/O fails); offline "
           "unmounted or in-use.",
           "mode", {"rw", "ro", "fail", "unmounted", "in-use"}, s.metadata_mode);
  const StatusControls& c = s.hydration_settings;
  e.gauge("hydration_paused", "1 if background hydration is paused (offline: saved).",
          c.paused ? 1 : 0);
  e.gauge("hydration_threshold_regions", "Regions in flight the hydrator may have.",
          number(c.threshold));
  e.gauge("hydration_batch_regions", "Contiguous regions per hydration copy.", number(c.batch));
  e.gauge("hydration_rate_limit_bytes_per_second", "Hydration bandwidth limit (0: none).",
          number(c.rate_limit));
  if (s.hydration) {
    const StatusHydration& h = *s.hydration;
    e.states("hydration_state", "The hydrator's state.", "state",
             {"running", "paused", "complete", "idle"}, h.state);
    e.gauge("hydration_rate_bytes_per_second", "Recent hydration rate.", h.rate_bytes_per_s);
    if (h.eta_seconds) {
      e.gauge("hydration_eta_seconds", "Estimated seconds until every region is valid.",
              *h.eta_seconds);
    }
    e.gauge("hydration_failed_regions", "Regions the source could not be read for, after retries.",
            number(h.failed_regions));
  }
  if (s.counters) {
    const StatusCounters& k = *s.counters;
    e.counter("destination_syncs_total", "Destination fdatasyncs since the mount.",
              k.destination_syncs);
    e.counter("metadata_commits_total", "Metadata commits since the mount.", k.metadata_commits);
    e.counter("regions_copied_total", "Regions copied from the source since the mount.",
              k.regions_copied);
    e.counter("regions_skipped_total",
              "Regions made valid without copying (holes, zeros) since the mount.",
              k.regions_skipped);
    e.counter("copied_bytes_total", "Bytes copied from the source since the mount.",
              k.bytes_copied);
  }
  if (s.passthrough) {
    const StatusPassthrough& p = *s.passthrough;
    e.states("passthrough_state", "Kernel passthrough of the hydrated image (see status --json).",
             "state", {"off", "unavailable", "waiting", "active"}, p.state);
    e.gauge("passthrough_opens", "Open files of the image the kernel serves from the destination.",
            number(p.passthrough_opens));
    e.gauge("fuse_opens", "Open files of the image served through the daemon.",
            number(p.fuse_opens));
    e.counter("fuse_requests_total", "FUSE requests this serving process has read.", p.requests);
    e.counter("spliced_reads_total",
              "Reads through the daemon answered by splicing the destination's pages.",
              p.spliced_reads);
  }
  return std::move(e).text();
}

}  // namespace clonefs
