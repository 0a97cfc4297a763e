#include "control/status.h"

namespace clonefs {
namespace {

using nlohmann::json;

json controls_fields(const StatusControls& c) {
  return {{"paused", c.paused},
          {"threshold", c.threshold},
          {"batch", c.batch},
          {"rate_limit", c.rate_limit}};
}

json hydration_json(const StatusHydration& h) {
  json j = controls_fields(h.controls);
  j["state"] = h.state;
  j["state_reason"] = h.state_reason;
  j["rate_bytes_per_s"] = h.rate_bytes_per_s;
  j["eta_seconds"] = h.eta_seconds ? json(*h.eta_seconds) : json(nullptr);
  j["failed_regions"] = h.failed_regions;
  j["failed_sample"] = h.failed_sample;
  j["priority_regions"] = h.priority_regions;
  j["plan_regions"] = h.plan_regions;
  j["plan_regions_left"] = h.plan_regions_left;
  j["copy_method"] = h.copy_method;
  return j;
}

json counters_json(const StatusCounters& c) {
  return {{"destination_syncs", c.destination_syncs},
          {"metadata_commits", c.metadata_commits},
          {"regions_copied", c.regions_copied},
          {"regions_skipped", c.regions_skipped},
          {"bytes_copied", c.bytes_copied},
          {"bytes_fell_through", c.bytes_fell_through},
          {"regions_shared", c.regions_shared},
          {"bytes_shared", c.bytes_shared},
          {"bytes_written_through", c.bytes_written_through}};
}

json source_connection_json(const StatusSourceConnection& c) {
  return {{"state", c.state},
          {"connections", c.connections},
          {"connections_wanted", c.connections_wanted},
          {"reconnects", c.reconnects},
          {"last_error", c.last_error}};
}

json supervisor_json(const StatusSupervisor& s) {
  return {{"pid", s.pid},
          {"serving_pid", s.serving_pid},
          {"restarts", s.restarts},
          {"last_restart", s.last_restart ? json(*s.last_restart) : json(nullptr)}};
}

json passthrough_json(const StatusPassthrough& p) {
  return {{"state", p.state},
          {"reason", p.reason},
          {"passthrough_opens", p.passthrough_opens},
          {"fuse_opens", p.fuse_opens},
          {"requests", p.requests},
          {"spliced_reads", p.spliced_reads}};
}

// "field \"hydration.batch\" should be a non-negative integer, not \"16\"" (the value cut short:
// the message is one line of an error).
[[noreturn]] void mistyped(const std::string& field, const char* expected, const json& got) {
  std::string shown = got.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  throw StatusFormatError((field.empty() ? "the status" : "field \"" + field + "\"") +
                          " should be " + expected + ", not " + shown);
}

// Reads the fields of one JSON object, strictly; errors carry the field's full path.
class Fields {
 public:
  Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) fail("", "an object", object_);
  }

  std::string text(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }
  bool flag(const char* key) const {
    const json& v = at(key);
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }
  uint64_t count(const char* key) const { return count_of(at(key), key); }
  double number(const char* key) const {
    const json& v = at(key);
    if (!v.is_number()) fail(key, "a number", v);
    return v.get<double>();
  }
  // A field whose value may be null: nullopt for null, else `read` of it.
  template <typename Read>
  auto nullable(const char* key, Read read) const -> std::optional<decltype(read(json(), ""))> {
    const json& v = at(key);
    if (v.is_null()) return std::nullopt;
    return read(v, name(key));
  }
  // Public for a nested object, read by a Fields of its own.
  const json& at(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end()) throw StatusFormatError("field \"" + name(key) + "\" is missing");
    return *it;
  }
  std::vector<uint64_t> counts(const char* key) const {
    const json& v = at(key);
    if (!v.is_array()) fail(key, "an array of integers", v);
    std::vector<uint64_t> out;
    for (const json& item : v) out.push_back(count_of(item, key));
    return out;
  }

 private:
  uint64_t count_of(const json& v, const char* key) const {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      fail(key, "a non-negative integer", v);
    }
    return v.get<uint64_t>();
  }
  std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] void fail(const char* key, const char* expected, const json& got) const {
    mistyped(*key ? name(key) : path_, expected, got);
  }

  const json& object_;
  std::string path_;
};

StatusControls controls_from(const Fields& f) {
  return {.paused = f.flag("paused"),
          .threshold = f.count("threshold"),
          .batch = f.count("batch"),
          .rate_limit = f.count("rate_limit")};
}

StatusHydration hydration_from(const json& j, const std::string& path) {
  Fields f(j, path);
  return {.state = f.text("state"),
          .state_reason = f.text("state_reason"),
          .controls = controls_from(f),
          .rate_bytes_per_s = f.number("rate_bytes_per_s"),
          .eta_seconds = f.nullable("eta_seconds",
                                    [&](const json& v, const std::string& name) {
                                      if (!v.is_number()) mistyped(name, "a number or null", v);
                                      return v.get<double>();
                                    }),
          .failed_regions = f.count("failed_regions"),
          .failed_sample = f.counts("failed_sample"),
          .priority_regions = f.count("priority_regions"),
          .plan_regions = f.count("plan_regions"),
          .plan_regions_left = f.count("plan_regions_left"),
          .copy_method = f.text("copy_method")};
}

StatusCounters counters_from(const json& j, const std::string& path) {
  Fields f(j, path);
  return {.destination_syncs = f.count("destination_syncs"),
          .metadata_commits = f.count("metadata_commits"),
          .regions_copied = f.count("regions_copied"),
          .regions_skipped = f.count("regions_skipped"),
          .bytes_copied = f.count("bytes_copied"),
          .bytes_fell_through = f.count("bytes_fell_through"),
          .regions_shared = f.count("regions_shared"),
          .bytes_shared = f.count("bytes_shared"),
          .bytes_written_through = f.count("bytes_written_through")};
}

StatusSourceConnection source_connection_from(const json& j, const std::string& path) {
  Fields f(j, path);
  return {.state = f.text("state"),
          .connections = f.count("connections"),
          .connections_wanted = f.count("connections_wanted"),
          .reconnects = f.count("reconnects"),
          .last_error = f.text("last_error")};
}

int process_id(const json& v, const std::string& name) {
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > INT32_MAX) {
    mistyped(name, "a process id", v);
  }
  return v.get<int>();
}

StatusSupervisor supervisor_from(const json& j, const std::string& path) {
  Fields f(j, path);
  return {.pid = process_id(f.at("pid"), path + ".pid"),
          .serving_pid = process_id(f.at("serving_pid"), path + ".serving_pid"),
          .restarts = f.count("restarts"),
          .last_restart = f.nullable("last_restart", [](const json& v, const std::string& name) {
            if (!v.is_string()) mistyped(name, "a string or null", v);
            return v.get<std::string>();
          })};
}

StatusPassthrough passthrough_from(const json& j, const std::string& path) {
  Fields f(j, path);
  return {.state = f.text("state"),
          .reason = f.text("reason"),
          .passthrough_opens = f.count("passthrough_opens"),
          .fuse_opens = f.count("fuse_opens"),
          .requests = f.count("requests"),
          .spliced_reads = f.count("spliced_reads")};
}

}  // namespace

void to_json(json& j, const CloneStatus& s) {
  j = json::object();
  j["image"] = s.image ? json(*s.image) : json(nullptr);
  j["metadata"] = s.metadata;
  j["source"] = s.source;
  j["destination"] = s.destination;
  j["image_size"] = s.image_size;
  j["region_size"] = s.region_size;
  j["regions_total"] = s.regions_total;
  j["regions_valid"] = s.regions_valid;
  j["regions_uncommitted"] = s.regions_uncommitted;
  j["bytes_valid"] = s.bytes_valid;
  j["regions_in_flight"] = s.regions_in_flight;
  j["mounted"] = s.mounted;
  j["pid"] = s.pid ? json(*s.pid) : json(nullptr);
  j["metadata_mode"] = s.metadata_mode;
  j["metadata_mode_reason"] = s.metadata_mode_reason;
  j["hydration"] = s.hydration ? hydration_json(*s.hydration) : json(nullptr);
  j["hydration_settings"] = controls_fields(s.hydration_settings);
  j["complete"] = s.complete;
  j["counters"] = s.counters ? counters_json(*s.counters) : json(nullptr);
  j["source_connection"] =
      s.source_connection ? source_connection_json(*s.source_connection) : json(nullptr);
  j["supervisor"] = s.supervisor ? supervisor_json(*s.supervisor) : json(nullptr);
  j["passthrough"] = s.passthrough ? passthrough_json(*s.passthrough) : json(nullptr);
}

void from_json(const json& j, CloneStatus& s) {
  Fields f(j, "");
  CloneStatus out;
  out.image = f.nullable("image", [](const json& v, const std::string& name) {
    if (!v.is_string()) mistyped(name, "a string or null", v);
    return v.get<std::string>();
  });
  out.metadata = f.text("metadata");
  out.source = f.text("source");
  out.destination = f.text("destination");
  out.image_size = f.count("image_size");
  out.region_size = f.count("region_size");
  out.regions_total = f.count("regions_total");
  out.regions_valid = f.count("regions_valid");
  out.regions_uncommitted = f.count("regions_uncommitted");
  out.bytes_valid = f.count("bytes_valid");
  out.regions_in_flight = f.count("regions_in_flight");
  out.mounted = f.flag("mounted");
  out.pid = f.nullable("pid", [](const json& v, const std::string& name) {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > INT32_MAX) {
      mistyped(name, "a process id or null", v);
    }
    return v.get<int>();
  });
  out.metadata_mode = f.text("metadata_mode");
  out.metadata_mode_reason = f.text("metadata_mode_reason");
  out.hydration = f.nullable("hydration", hydration_from);
  out.hydration_settings = controls_from(Fields(f.at("hydration_settings"), "hydration_settings"));
  out.complete = f.flag("complete");
  out.counters = f.nullable("counters", counters_from);
  out.source_connection = f.nullable("source_connection", source_connection_from);
  out.supervisor = f.nullable("supervisor", supervisor_from);
  out.passthrough = f.nullable("passthrough", passthrough_from);
  s = std::move(out);
}

Result<CloneStatus> parse_status(std::string_view text, const std::string& origin) {
  auto parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) return Status::error(EIO, origin + ": the status is not JSON");
  try {
    return parsed.get<CloneStatus>();
  } catch (const StatusFormatError& e) {
    return Status::error(
        EIO, origin + ": malformed status: " + e.what() + " (written by another clonefs version?)");
  }
}

}  // namespace clonefs
