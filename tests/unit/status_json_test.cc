// The status JSON (control/status.h): its field set is a promise (README: fields are added, never
// renamed), so it is pinned here key path by key path, with each field's JSON type; the one
// to_json/from_json pair round-trips; and a missing or mistyped field is an error naming it.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "control/status.h"
#include "daemon/status_report.h"
#include "meta/metadata_store.h"
#include "support/temp_dir.h"

namespace clonefs {
namespace {

using nlohmann::json;

CloneStatus live_sample() {
  CloneStatus s;
  s.image = "/mnt/vm.img";
  s.metadata = "/var/lib/vm.meta";
  s.source = "/srv/golden.img";
  s.destination = "/dev/vg/vm";
  s.image_size = 10ull << 30;
  s.region_size = 64 << 10;
  s.regions_total = 163840;
  s.regions_valid = 40960;
  s.regions_uncommitted = 12;
  s.bytes_valid = 40960ull << 16;
  s.regions_in_flight = 32;
  s.mounted = true;
  s.pid = 4242;
  s.metadata_mode = "rw";
  s.hydration = StatusHydration{.state = "running",
                                .controls = {.threshold = 64, .batch = 16, .rate_limit = 200 << 20},
                                .rate_bytes_per_s = 123456789.5,
                                .eta_seconds = 68.25,
                                .failed_regions = 2,
                                .failed_sample = {7, 9},
                                .priority_regions = 24,
                                .plan_regions = 4096,
                                .plan_regions_left = 1000,
                                .copy_method = "reflink"};
  s.hydration_settings = {.threshold = 64, .batch = 16, .rate_limit = 200 << 20};
  s.counters = StatusCounters{.destination_syncs = 3,
                              .metadata_commits = 5,
                              .regions_copied = 40000,
                              .regions_skipped = 960,
                              .bytes_copied = 40000ull << 16,
                              .bytes_fell_through = 123456,
                              .regions_shared = 120,
                              .bytes_shared = 120ull << 16,
                              .bytes_written_through = 7ull << 14};

  s.source_connection = StatusSourceConnection{.state = "degraded",
                                               .connections = 3,
                                               .connections_wanted = 4,
                                               .reconnects = 2,
                                               .last_error = "connection lost"};
  s.supervisor = StatusSupervisor{.pid = 4241,
                                  .serving_pid = 4242,
                                  .restarts = 3,
                                  .last_restart = "serving process 4240 died (signal 9 (Killed))"};
  s.passthrough = StatusPassthrough{.state = "unavailable",
                                    .reason = "registering the destination failed: EPERM",
                                    .passthrough_opens = 2,
                                    .fuse_opens = 1,
                                    .requests = 12345,
                                    .spliced_reads = 678};
  return s;
}

CloneStatus offline_sample() {
  CloneStatus s;
  s.metadata = "/var/lib/vm.meta";
  s.source = "/srv/golden.img";
  s.destination = "/dev/vg/vm";
  s.image_size = 1 << 20;
  s.region_size = 4096;
  s.regions_total = 256;
  s.regions_valid = 256;
  s.bytes_valid = 1 << 20;
  s.metadata_mode = "unmounted";
  s.hydration_settings = {.paused = true, .threshold = 8, .batch = 4};
  s.complete = true;
  return s;
}

// Every key path of `j` with its JSON type name, objects descended into ("hydration.state").
void collect(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, value] : j.items()) {
    std::string path = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) {
      out[path] = "object";
      collect(value, path, out);
    } else {
      out[path] = value.is_number_integer() ? "integer" : value.type_name();
    }
  }
}

// The promised field set. A field that disappears or is renamed fails here: that breaks every
// script reading `clonefs status --json` (and bench/clonefs_bench/clonefs.py). A new field is
// added here, to README's table and to control/status.h's list.
const std::map<std::string, std::string> kLiveFields = {
    {"image", "string"},
    {"metadata", "string"},
    {"source", "string"},
    {"destination", "string"},
    {"image_size", "integer"},
    {"region_size", "integer"},
    {"regions_total", "integer"},
    {"regions_valid", "integer"},
    {"regions_uncommitted", "integer"},
    {"bytes_valid", "integer"},
    {"regions_in_flight", "integer"},
    {"mounted", "boolean"},
    {"pid", "integer"},
    {"metadata_mode", "string"},
    {"metadata_mode_reason", "string"},
    {"hydration", "object"},
    {"hydration.state", "string"},
    {"hydration.state_reason", "string"},
    {"hydration.paused", "boolean"},
    {"hydration.threshold", "integer"},
    {"hydration.batch", "integer"},
    {"hydration.rate_limit", "integer"},
    {"hydration.rate_bytes_per_s", "number"},
    {"hydration.eta_seconds", "number"},
    {"hydration.failed_regions", "integer"},
    {"hydration.failed_sample", "array"},
    {"hydration.priority_regions", "integer"},
    {"hydration.plan_regions", "integer"},
    {"hydration.plan_regions_left", "integer"},
    {"hydration.copy_method", "string"},
    {"hydration_settings", "object"},
    {"hydration_settings.paused", "boolean"},
    {"hydration_settings.threshold", "integer"},
    {"hydration_settings.batch", "integer"},
    {"hydration_settings.rate_limit", "integer"},
    {"complete", "boolean"},
    {"counters", "object"},
    {"counters.destination_syncs", "integer"},
    {"counters.metadata_commits", "integer"},
    {"counters.regions_copied", "integer"},
    {"counters.regions_skipped", "integer"},
    {"counters.bytes_copied", "integer"},
    {"counters.bytes_fell_through", "integer"},
    {"source_connection", "object"},
    {"source_connection.state", "string"},
    {"source_connection.connections", "integer"},
    {"source_connection.connections_wanted", "integer"},
    {"source_connection.reconnects", "integer"},
    {"source_connection.last_error", "string"},
    {"supervisor", "object"},
    {"supervisor.pid", "integer"},
    {"supervisor.serving_pid", "integer"},
    {"supervisor.restarts", "integer"},
    {"supervisor.last_restart", "string"},
    {"counters.regions_shared", "integer"},
    {"counters.bytes_shared", "integer"},
    {"counters.bytes_written_through", "integer"},
    {"passthrough", "object"},
    {"passthrough.state", "string"},
    {"passthrough.reason", "string"},
    {"passthrough.passthrough_opens", "integer"},
    {"passthrough.fuse_opens", "integer"},
    {"passthrough.requests", "integer"},
    {"passthrough.spliced_reads", "integer"},
};

std::map<std::string, std::string> fields_of(const CloneStatus& s) {
  std::map<std::string, std::string> out;
  collect(json(s), "", out);
  return out;
}

TEST(StatusJson, LiveFieldSetAndTypesArePinned) {
  auto fields = fields_of(live_sample());
  for (const auto& [path, type] : kLiveFields) {
    auto it = fields.find(path);
    ASSERT_NE(it, fields.end()) << "status field \"" << path << "\" disappeared or was renamed";
    EXPECT_EQ(it->second, type) << "status field \"" << path << "\" changed type";
  }
  for (const auto& [path, type] : fields) {
    EXPECT_TRUE(kLiveFields.contains(path))
        << "new status field \"" << path
        << "\": add it to kLiveFields, README and control/status.h";
  }
  EXPECT_EQ(json(live_sample())["hydration"]["failed_sample"], json::array({7, 9}));
}

// Offline, the live-only parts are null, not absent: a reader sees the same keys either way.
TEST(StatusJson, OfflineHasTheSameTopLevelKeysWithNulls) {
  json j = offline_sample();
  const json live = live_sample();
  std::set<std::string> keys, live_keys;
  for (const auto& [key, value] : j.items()) keys.insert(key);
  for (const auto& [key, value] : live.items()) live_keys.insert(key);
  EXPECT_EQ(keys, live_keys);
  for (const char* key : {"image", "pid", "hydration", "counters", "source_connection",
                          "supervisor", "passthrough"}) {
    EXPECT_TRUE(j[key].is_null()) << key << " is " << j[key].dump();
  }
  EXPECT_TRUE(j["hydration_settings"]["paused"].get<bool>());
}

TEST(StatusJson, UnknownEtaIsNull) {
  CloneStatus s = live_sample();
  s.hydration->eta_seconds.reset();
  EXPECT_TRUE(json(s)["hydration"]["eta_seconds"].is_null());
}

// The exact bytes `clonefs status --json` printed before the struct existed, for this status
// (plus the fields added since, at the end of their sort order).
TEST(StatusJson, SerialisesByteForByteAsBefore) {
  EXPECT_EQ(
      json(offline_sample()).dump(),
      R"({"bytes_valid":1048576,"complete":true,"counters":null,"destination":"/dev/vg/vm",)"
      R"("hydration":null,"hydration_settings":{"batch":4,"paused":true,"rate_limit":0,"threshold":8},)"
      R"("image":null,"image_size":1048576,"metadata":"/var/lib/vm.meta","metadata_mode":"unmounted",)"
      R"("metadata_mode_reason":"","mounted":false,"passthrough":null,"pid":null,"region_size":4096,)"
      R"("regions_in_flight":0,)"
      R"("regions_total":256,"regions_uncommitted":0,"regions_valid":256,"source":"/srv/golden.img",)"
      R"("source_connection":null,"supervisor":null})");
}

TEST(StatusJson, RoundTripsLiveAndOffline) {
  for (const CloneStatus& s : {live_sample(), offline_sample()}) {
    json j = s;
    EXPECT_EQ(j.get<CloneStatus>(), s) << j.dump();
    // Through text too, as the ioctl carries it: parsed and printed again, the same bytes.
    auto parsed = parse_status(j.dump(), "img");
    ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, s);
    EXPECT_EQ(json(*parsed).dump(2), j.dump(2));
  }
}

// Every field, removed in turn, is named by the error; none is silently defaulted.
TEST(StatusJson, EachMissingFieldIsAnErrorNamingIt) {
  const json whole = live_sample();
  for (const auto& [path, type] : kLiveFields) {
    json j = whole;
    auto dot = path.find('.');
    if (dot == std::string::npos) {
      j.erase(path);
    } else {
      j[path.substr(0, dot)].erase(path.substr(dot + 1));
    }
    auto parsed = parse_status(j.dump(), "/mnt/vm.img");
    ASSERT_FALSE(parsed.is_ok()) << "status without \"" << path << "\" was accepted";
    EXPECT_EQ(parsed.status().code(), EIO);
    const std::string& message = parsed.status().message();
    EXPECT_NE(message.find("\"" + path + "\" is missing"), std::string::npos) << message;
    EXPECT_NE(message.find("/mnt/vm.img"), std::string::npos) << message;
  }
}

TEST(StatusJson, MistypedFieldsAreErrorsNamingThem) {
  const json whole = live_sample();
  const std::pair<json::json_pointer, json> bad[] = {
      {json::json_pointer("/regions_valid"), "12"},
      {json::json_pointer("/regions_valid"), -1},
      {json::json_pointer("/regions_valid"), 1.5},
      {json::json_pointer("/image"), 3},
      {json::json_pointer("/pid"), 0},
      {json::json_pointer("/pid"), "4242"},
      {json::json_pointer("/mounted"), 1},
      {json::json_pointer("/hydration"), json::array()},
      {json::json_pointer("/hydration/eta_seconds"), "soon"},
      {json::json_pointer("/hydration/failed_sample"), json::array({1, "x"})},
      {json::json_pointer("/hydration_settings"), nullptr},
      {json::json_pointer("/counters/bytes_copied"), nullptr},
      {json::json_pointer("/supervisor/pid"), 0},
      {json::json_pointer("/supervisor/serving_pid"), "4242"},
      {json::json_pointer("/supervisor/last_restart"), 3},
  };
  for (const auto& [pointer, value] : bad) {
    json j = whole;
    j[pointer] = value;
    std::string path = pointer.to_string().substr(1);
    for (char& c : path) c = c == '/' ? '.' : c;
    auto parsed = parse_status(j.dump(), "img");
    ASSERT_FALSE(parsed.is_ok()) << path << " = " << value.dump() << " was accepted";
    EXPECT_NE(parsed.status().message().find("\"" + path + "\""), std::string::npos)
        << parsed.status().message();
  }
}

TEST(StatusJson, NotJsonOrNotAnObjectIsAnError) {
  for (const char* text : {"", "{", "[]", "42", "null"}) {
    auto parsed = parse_status(text, "img");
    ASSERT_FALSE(parsed.is_ok()) << text;
    EXPECT_EQ(parsed.status().code(), EIO);
    EXPECT_EQ(parsed.status().message().rfind("img: ", 0), 0u) << parsed.status().message();
  }
}

// A newer daemon may add fields; this CLI reads what it knows and ignores the rest.
TEST(StatusJson, UnknownFieldsAreIgnored) {
  json j = live_sample();
  j["added_later"] = 1;
  j["hydration"]["added_later"] = "x";
  auto parsed = parse_status(j.dump(), "img");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, live_sample());
}

// The daemon-side builder, offline: a fresh clone's committed state, in the promised shape.
TEST(StatusJson, OfflineStatusOfAFreshClone) {
  testing::TempDir dir;
  CloneRecord record{.image_size = (1 << 20) + 100,
                     .region_size = 4096,
                     .source_path = "/s",
                     .source_size = (1 << 20) + 100,
                     .source_fingerprint = "f",
                     .destination_path = "/d"};
  ASSERT_TRUE(MetadataStore::create(dir.file("meta.db"), record, false).is_ok());
  auto status = offline_status(dir.file("meta.db"));
  ASSERT_TRUE(status.is_ok()) << status.status().message();
  EXPECT_EQ(status->metadata, dir.file("meta.db"));
  EXPECT_EQ(status->source, "/s");
  EXPECT_EQ(status->destination, "/d");
  EXPECT_EQ(status->regions_total, 257u) << "the last, short region counts";
  EXPECT_EQ(status->regions_valid, 0u);
  EXPECT_FALSE(status->complete);
  EXPECT_FALSE(status->mounted);
  EXPECT_FALSE(status->pid.has_value());
  EXPECT_EQ(status->metadata_mode, "unmounted");
  EXPECT_FALSE(status->image || status->hydration || status->counters);
  EXPECT_EQ(status->hydration_settings, (StatusControls{.threshold = 64, .batch = 16}))
      << "not the defaults of a clone that saved none";
  auto again = parse_status(json(*status).dump(), "meta");
  ASSERT_TRUE(again.is_ok()) << again.status().message();
  EXPECT_EQ(*again, *status);
}

}  // namespace
}  // namespace clonefs
