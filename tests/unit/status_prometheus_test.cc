// `clonefs status --prometheus`: every line of the output is checked against the text
// exposition format (version 0.0.4, what node_exporter's textfile collector parses), for live
// and offline statuses and for paths holding the characters a label value must escape.
#include "control/status_prometheus.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "support/prometheus_exposition.h"

namespace clonefs {
namespace {

using testing::parse_exposition;
using testing::Sample;
using testing::value_of;

CloneStatus offline() {
  CloneStatus s;
  s.metadata = "/m/vm.meta";
  s.source = "/s/golden.img";
  s.destination = "/d/vm.img";
  s.image_size = 1 << 30;
  s.region_size = 64 << 10;
  s.regions_total = 16384;
  s.regions_valid = 4096;
  s.bytes_valid = 256 << 20;
  s.metadata_mode = "unmounted";
  s.hydration_settings = {.paused = true, .threshold = 64, .batch = 16, .rate_limit = 0};
  return s;
}

CloneStatus live() {
  CloneStatus s = offline();
  s.image = "/mnt/vm.img";
  s.mounted = true;
  s.pid = 4242;
  s.metadata_mode = "rw";
  s.regions_in_flight = 32;
  s.regions_uncommitted = 7;
  s.hydration = StatusHydration{.state = "running",
                                .controls = {.threshold = 64, .batch = 16, .rate_limit = 200 << 20},
                                .rate_bytes_per_s = 150.5 * (1 << 20),
                                .eta_seconds = 245.25};
  s.hydration_settings = s.hydration->controls;
  s.counters = StatusCounters{.destination_syncs = 3,
                              .metadata_commits = 5,
                              .regions_copied = 4000,
                              .regions_skipped = 96,
                              .bytes_copied = 4000ull << 16};
  return s;
}

TEST(StatusPrometheus, LiveIsValidExpositionWithEveryFigure) {
  CloneStatus s = live();
  auto samples = parse_exposition(format_status_prometheus(s));
  for (const Sample& sample : samples) {
    EXPECT_EQ(sample.labels.at("image"), "/mnt/vm.img") << sample.family;
    EXPECT_EQ(sample.labels.at("metadata"), "/m/vm.meta") << sample.family;
  }
  EXPECT_EQ(value_of(samples, "clonefs_regions"), 16384);
  EXPECT_EQ(value_of(samples, "clonefs_regions_valid"), 4096);
  EXPECT_EQ(value_of(samples, "clonefs_regions_uncommitted"), 7);
  EXPECT_EQ(value_of(samples, "clonefs_regions_in_flight"), 32);
  EXPECT_EQ(value_of(samples, "clonefs_valid_bytes"), 256 << 20);
  EXPECT_EQ(value_of(samples, "clonefs_image_size_bytes"), 1 << 30);
  EXPECT_EQ(value_of(samples, "clonefs_region_size_bytes"), 64 << 10);
  EXPECT_EQ(value_of(samples, "clonefs_mounted"), 1);
  EXPECT_EQ(value_of(samples, "clonefs_complete"), 0);
  EXPECT_EQ(value_of(samples, "clonefs_metadata_mode", "mode", "rw"), 1);
  EXPECT_EQ(value_of(samples, "clonefs_metadata_mode", "mode", "ro"), 0);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_state", "state", "running"), 1);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_state", "state", "idle"), 0);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_paused"), 0);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_threshold_regions"), 64);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_batch_regions"), 16);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_rate_limit_bytes_per_second"), 200 << 20);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_rate_bytes_per_second"), 150.5 * (1 << 20));
  EXPECT_EQ(value_of(samples, "clonefs_hydration_eta_seconds"), 245.25);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_failed_regions"), 0);
  EXPECT_EQ(value_of(samples, "clonefs_destination_syncs_total"), 3);
  EXPECT_EQ(value_of(samples, "clonefs_metadata_commits_total"), 5);
  EXPECT_EQ(value_of(samples, "clonefs_regions_copied_total"), 4000);
  EXPECT_EQ(value_of(samples, "clonefs_regions_skipped_total"), 96);
  EXPECT_EQ(value_of(samples, "clonefs_copied_bytes_total"), 4000ull << 16);
  EXPECT_EQ(value_of(samples, "clonefs_info", "source", "/s/golden.img"), 1);
}

TEST(StatusPrometheus, OfflineHasNoLiveFamilies) {
  auto samples = parse_exposition(format_status_prometheus(offline()));
  EXPECT_EQ(value_of(samples, "clonefs_mounted"), 0);
  EXPECT_EQ(value_of(samples, "clonefs_metadata_mode", "mode", "unmounted"), 1);
  EXPECT_EQ(value_of(samples, "clonefs_hydration_paused"), 1);
  EXPECT_FALSE(value_of(samples, "clonefs_hydration_state"));
  EXPECT_FALSE(value_of(samples, "clonefs_destination_syncs_total"));
  for (const Sample& sample : samples) EXPECT_EQ(sample.labels.at("image"), "") << sample.family;
}

TEST(StatusPrometheus, UnknownEtaIsLeftOut) {
  CloneStatus s = live();
  s.hydration->eta_seconds.reset();
  auto samples = parse_exposition(format_status_prometheus(s));
  EXPECT_FALSE(value_of(samples, "clonefs_hydration_eta_seconds"));
  EXPECT_TRUE(value_of(samples, "clonefs_hydration_rate_bytes_per_second"));
}

TEST(StatusPrometheus, PathsAreEscapedInLabels) {
  CloneStatus s = live();
  s.image = "/mnt/a \"quoted\"\\dir\nline/vm.img";
  s.metadata = "/m/{x},y=\"z\".meta";
  auto samples = parse_exposition(format_status_prometheus(s));
  ASSERT_FALSE(samples.empty());
  for (const Sample& sample : samples) {
    EXPECT_EQ(sample.labels.at("image"), *s.image) << sample.family;
    EXPECT_EQ(sample.labels.at("metadata"), s.metadata) << sample.family;
  }
}

// The checker itself rejects what it must, so a formatter bug cannot pass unnoticed.
TEST(StatusPrometheus, CheckerRejectsInvalidLines) {
  const char* bad[] = {
      "# TYPE clonefs_x gauge\n# HELP clonefs_x x\nclonefs_x{a=\"b\"c\"} 1\n",   // bad escape
      "# TYPE clonefs_x gauge\n# HELP clonefs_x x\nclonefs_x 1.2.3\n",           // bad value
      "# HELP clonefs_x x\nclonefs_x 1\n",                                       // no TYPE
      "# TYPE clonefs_x counter\n# HELP clonefs_x x\nclonefs_x 1\n",             // counter name
      "# TYPE clonefs_x gauge\n# HELP clonefs_x x\nclonefs_x 1\nclonefs_x 2\n",  // same series
      "# TYPE clonefs_x gauge\n# HELP clonefs_x x\nclonefs-x 1\n",               // bad name
  };
  for (const char* text : bad) {
    ::testing::TestPartResultArray failures;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
      parse_exposition(text);
    }
    EXPECT_GT(failures.size(), 0) << "accepted: " << text;
  }
}

}  // namespace
}  // namespace clonefs
