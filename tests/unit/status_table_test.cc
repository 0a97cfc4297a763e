// `clonefs status` without --json: representative statuses and the exact lines they print.
#include "control/status_table.h"

#include <gtest/gtest.h>

namespace clonefs {
namespace {

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
                                .rate_bytes_per_s = 150 << 20,
                                .eta_seconds = 245,
                                .copy_method = "copy_file_range"};
  s.hydration_settings = s.hydration->controls;
  s.counters = StatusCounters{.destination_syncs = 3,
                              .metadata_commits = 5,
                              .regions_copied = 4000,
                              .regions_skipped = 96,
                              .bytes_copied = 4000ull << 16,
                              .regions_shared = 12,
                              .bytes_shared = 12ull << 16};
  return s;
}

TEST(StatusTable, Live) {
  EXPECT_EQ(
      format_status_table(live()),
      "image           /mnt/vm.img (mounted, pid 4242)\n"
      "metadata        /m/vm.meta\n"
      "source          /s/golden.img\n"
      "destination     /d/vm.img\n"
      "size            1.0 GiB in 16384 regions of 64.0 KiB\n"
      "valid           4096 / 16384 regions (25.0%), 256.0 MiB / 1.0 GiB\n"
      "metadata mode   rw\n"
      "in flight       32 regions, 7 valid but uncommitted\n"
      "hydration       running, threshold 64 regions, batch 16 regions, rate limit 200.0 MiB/s\n"
      "rate            150.0 MiB/s, ETA 4m 05s\n"
      "failed regions  0\n"
      "copy method     copy_file_range\n"
      "complete        no\n"
      "counters        3 destination syncs, 5 commits, 4000 regions copied (250.0 MiB), 12 "
      "shared (768.0 KiB), 96 skipped\n");
}

TEST(StatusTable, OfflineShowsTheSavedControls) {
  CloneStatus s = offline();
  s.hydration_settings = {.paused = true, .threshold = 8, .batch = 4, .rate_limit = 0};
  EXPECT_EQ(format_status_table(s),
            "metadata        /m/vm.meta\n"
            "source          /s/golden.img\n"
            "destination     /d/vm.img\n"
            "size            1.0 GiB in 16384 regions of 64.0 KiB\n"
            "valid           4096 / 16384 regions (25.0%), 256.0 MiB / 1.0 GiB\n"
            "metadata mode   unmounted\n"
            "hydration       paused, threshold 8 regions, batch 4 regions, rate limit none (saved: "
            "the next mount starts so)\n"
            "complete        no\n");
}

// What a user looks at when something went wrong: the mode's reason, the idle state's reason,
// an unknown ETA, the failed regions by number.
TEST(StatusTable, TroubleIsSpelledOut) {
  CloneStatus s = live();
  s.metadata_mode = "ro";
  s.metadata_mode_reason = "a commit failed: No space left on device";
  s.hydration->state = "idle";
  s.hydration->state_reason = "metadata not writable";
  s.hydration->rate_bytes_per_s = 0;
  s.hydration->eta_seconds.reset();
  s.hydration->failed_regions = 3;
  s.hydration->failed_sample = {10, 11, 400};
  std::string table = format_status_table(s);
  EXPECT_NE(table.find("metadata mode   ro (a commit failed: No space left on device)\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("hydration       idle (metadata not writable), threshold"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("rate            0 B/s, ETA unknown\n"), std::string::npos) << table;
  EXPECT_NE(table.find("failed regions  3 (e.g. 10 11 400)\n"), std::string::npos) << table;
  EXPECT_EQ(table.find("first"), std::string::npos) << "nothing ordered first: no row\n" << table;
}

TEST(StatusTable, CompleteAndEmptyClone) {
  CloneStatus s = offline();
  s.regions_valid = s.regions_total;
  s.bytes_valid = s.image_size;
  s.complete = true;
  std::string table = format_status_table(s);
  EXPECT_NE(table.find("valid           16384 / 16384 regions (100.0%), 1.0 GiB / 1.0 GiB\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("complete        yes\n"), std::string::npos) << table;
  s.regions_total = s.regions_valid = 0;
  EXPECT_NE(format_status_table(s).find("(0.0%)"), std::string::npos) << "no division by zero";
}

// Issue 13: what is hydrated first, shown when there is any.
TEST(StatusTable, WhatIsHydratedFirst) {
  CloneStatus s = live();
  s.hydration->priority_regions = 24;
  s.hydration->plan_regions = 4096;
  s.hydration->plan_regions_left = 1000;
  std::string table = format_status_table(s);
  EXPECT_NE(table.find("first           24 regions reads wait on; plan 3096 / 4096 regions done\n"),
            std::string::npos)
      << table;
}

}  // namespace
}  // namespace clonefs
