// Every workload of one to three operations on a four-region image, each operation followed by
// a flush (a persistence point), as CrashMonkey's ACE does: the operations are the engine's
// distinct paths — whole-region and partial writes, a write across a region boundary, whole and
// partial discards, a hydration step — to valid and invalid regions alike, depending on order.
#include <gtest/gtest.h>

#include <iostream>

#include "crash/crash_harness.h"

namespace clonefs::crash {
namespace {

constexpr uint64_t kRegion = 4096;

std::vector<Op> alphabet() {
  return {
      {.kind = OpKind::kWrite, .offset = 0, .length = kRegion, .data_seed = 11},  // whole region 0
      {.kind = OpKind::kWrite,
       .offset = kRegion + 100,
       .length = 700,
       .data_seed = 12},  // inside region 1
      {.kind = OpKind::kWrite,
       .offset = 3 * kRegion - 300,
       .length = 600,
       .data_seed = 13},                                                     // regions 2|3
      {.kind = OpKind::kDiscard, .offset = 2 * kRegion, .length = kRegion},  // whole region 2
      {.kind = OpKind::kDiscard, .offset = 1000, .length = 1500},            // part of region 0
      {.kind = OpKind::kHydrate, .offset = 0, .length = 4},
  };
}

void append_workloads(std::vector<std::vector<Op>>& out, std::vector<Op>& prefix, size_t depth) {
  if (!prefix.empty()) out.push_back(prefix);
  if (depth == 0) return;
  for (Op op : alphabet()) {
    op.data_seed += 1000 * prefix.size();  // the same write again brings new data
    prefix.push_back(op);
    prefix.push_back({.kind = OpKind::kFlush});
    append_workloads(out, prefix, depth - 1);
    prefix.resize(prefix.size() - 2);
  }
}

TEST(CrashRecovery, EveryShortWorkloadKeepsTheContractAfterPowerLoss) {
  ScenarioOptions options;
  options.regions = 3;
  options.tail = 2048;  // a short fourth region
  options.random_points = 0;
  options.random_states = 1;
  options.exhaustive_limit = 16;
  std::vector<std::vector<Op>> workloads;
  std::vector<Op> prefix;
  append_workloads(workloads, prefix, 3);
  size_t states = 0, points = 0;
  for (size_t i = 0; i < workloads.size(); ++i) {
    SCOPED_TRACE("workload " + std::to_string(i) + ": " + describe(workloads[i]));
    ScenarioReport report = run_scenario(/*seed=*/i + 1, workloads[i], options);
    states += report.states_checked;
    points += report.crash_points;
    ASSERT_EQ(report.failure, "");
  }
  std::cout << "[ crash    ] short workloads: " << workloads.size() << " workloads, " << points
            << " crash points, " << states << " crash states recovered and checked\n";
}

}  // namespace
}  // namespace clonefs::crash
