// Power-loss simulation: workloads recorded once, then recovered from thousands of crash states
// and checked against docs/SEMANTICS.md, "After a crash".
//
// Replay one seed:  CLONEFS_CRASH_SEED=1234 ./clonefs_crash_tests --gtest_filter='*Random*'
// Soak:             CLONEFS_CRASH_SOAK=1 (20x the default seeds) or CLONEFS_CRASH_SOAK=<seeds>
// Print the trace:  CLONEFS_CRASH_TRACE=1;  scratch files go to /dev/shm or CLONEFS_CRASH_DIR.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "crash/crash_harness.h"

namespace clonefs::crash {
namespace {

// The seeds to run: the default range, one replayed seed, or a longer soak.
std::vector<uint64_t> seeds(uint64_t first, size_t default_count) {
  if (const char* one = std::getenv("CLONEFS_CRASH_SEED"); one && *one) return {std::stoull(one)};
  size_t count = default_count;
  if (const char* soak = std::getenv("CLONEFS_CRASH_SOAK"); soak && *soak) {
    size_t n = std::stoull(soak);
    count = n > 1 ? n : 20 * default_count;
  }
  std::vector<uint64_t> out;
  for (size_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

struct Totals {
  size_t scenarios = 0, points = 0, states = 0;
  uint64_t kernel_copies = 0;
  uint64_t bytes_written_through = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  void add(const ScenarioReport& r) {
    ++scenarios;
    points += r.crash_points;
    states += r.states_checked;
    kernel_copies += r.kernel_copies;
    bytes_written_through += r.bytes_written_through;
  }
  void print(const char* name) const {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    std::cout << "[ crash    ] " << name << ": " << scenarios << " workloads, " << points
              << " crash points, " << states << " crash states recovered and checked in "
              << ms.count() << " ms; " << kernel_copies << " hydration copies inside the kernel\n";
    ::testing::Test::RecordProperty("crash_states", static_cast<int>(states));
  }
};

// Returns the totals so a test can check which copy path its workloads took.
Totals run_random_workloads(const char* name, uint64_t first_seed, size_t default_seeds,
                            size_t op_count, const ScenarioOptions& options, bool pauses) {
  Totals totals;
  for (uint64_t seed : seeds(first_seed, default_seeds)) {
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (replay: CLONEFS_CRASH_SEED=" + std::to_string(seed) + ")");
    auto ops = random_workload(seed, scenario_geometry(options), op_count, pauses);
    ScenarioReport report = run_scenario(seed, ops, options);
    totals.add(report);
    EXPECT_EQ(report.failure, "");
    if (!report.failure.empty()) break;
    // Scratch files share one file system, so the kernel can copy between them, but tmpfs (the
    // default scratch place) cannot share extents.
    const CopyMethod allowed =
        options.emulate_reflink ? CopyMethod::kReflink : CopyMethod::kCopyFileRange;
    EXPECT_EQ(report.copy_method, std::min(options.best_copy_method, allowed));
  }
  totals.print(name);
  return totals;
}

// Single-threaded, commits only on flush and close: every run of a seed is the same trace.
// Hydration copies inside the kernel (copy_file_range), recorded as writes of the source's bytes.
TEST(CrashRecovery, RandomWorkloadsKeepTheContractAfterPowerLoss) {
  Totals totals =
      run_random_workloads("random workloads", 1, 40, 28, ScenarioOptions{}, /*pauses=*/false);
  EXPECT_GT(totals.kernel_copies, 0u) << "no workload hydrated through copy_from";
}

// Sharing the source's extents: hydration, and writes and discards into invalid regions, which
// share the region first and write over it.
TEST(CrashRecovery, RandomWorkloadsSharingExtentsKeepTheContractAfterPowerLoss) {
  ScenarioOptions options;
  options.emulate_reflink = true;
  Totals totals =
      run_random_workloads("random workloads, sharing", 1, 12, 28, options, /*pauses=*/false);
  EXPECT_GT(totals.kernel_copies, 0u);
}

// The same workloads with hydration reading and writing through the engine's buffers, as it
// does from a block device or a remote source.
TEST(CrashRecovery, RandomWorkloadsReadingAndWritingKeepTheContractAfterPowerLoss) {
  ScenarioOptions options;
  options.best_copy_method = CopyMethod::kReadWrite;
  Totals totals = run_random_workloads("random workloads, read and write", 1, 12, 28, options,
                                       /*pauses=*/false);
  EXPECT_EQ(totals.kernel_copies, 0u);
}

// The periodic committer commits in the background between (and during) user operations, a
// second thread hydrates, and reads hydrate what they touch. The trace depends on timing, so a
// replayed seed repeats the workload but not always the trace.
TEST(CrashRecovery, ConcurrentCommitsAndHydrationKeepTheContractAfterPowerLoss) {
  ScenarioOptions options;
  options.commit_period = std::chrono::milliseconds(1);
  options.copy_on_read = true;
  options.background_hydration = true;
  (void)run_random_workloads("concurrent commits and hydration", 100001, 16, 28, options,
                             /*pauses=*/true);
}

// Issue 13: reads write the whole regions they fetched from the source into the destination and
// make them valid, racing the periodic committer, the hydrating thread (priority on: it copies
// the regions reads fall through on) and the user's writes and discards.
TEST(CrashRecovery, ReadsWritingThroughKeepTheContractAfterPowerLoss) {
  ScenarioOptions options;
  options.commit_period = std::chrono::milliseconds(1);
  options.background_hydration = true;
  options.write_through = true;
  options.best_copy_method = CopyMethod::kReadWrite;
  Totals totals = run_random_workloads("reads writing through", 200001, 16, 28, options,
                                       /*pauses=*/true);
  EXPECT_GT(totals.bytes_written_through, 0u) << "no read wrote through";
}

}  // namespace
}  // namespace clonefs::crash
