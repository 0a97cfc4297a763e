// The harness's own tests: a destination that breaks the contract on purpose must be caught.
// Without them, every crash test could pass because the harness checks nothing — these show
// that a flush which does not reach the disk, or writes that never land, fail the check.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crash/crash_harness.h"
#include "io/forwarding.h"

namespace clonefs::crash {
namespace {

constexpr uint64_t kRegion = 4096;

// Acknowledges a flush without flushing: the bug the kernel's dm-clone fix was about, when
// metadata is committed before the destination's data is durable.
class FlushThatDoesNotFlush final : public ForwardingDestination {
 public:
  explicit FlushThatDoesNotFlush(std::unique_ptr<DestinationDevice> target)
      : ForwardingDestination(*target), owned_(std::move(target)) {}
  Status sync() override { return Status::ok(); }

 private:
  std::unique_ptr<DestinationDevice> owned_;
};

// Reports every write done and drops it.
class WritesThatNeverLand final : public ForwardingDestination {
 public:
  explicit WritesThatNeverLand(std::unique_ptr<DestinationDevice> target)
      : ForwardingDestination(*target), owned_(std::move(target)) {}
  Status write_at(uint64_t, std::span<const std::byte>) override { return Status::ok(); }

 private:
  std::unique_ptr<DestinationDevice> owned_;
};

ScenarioOptions small_scenario() {
  ScenarioOptions options;
  options.regions = 3;
  options.tail = 0;
  options.random_points = 4;
  return options;
}

// A whole-region write and a partial one, each made durable by a flush.
std::vector<Op> written_and_flushed() {
  return {{.kind = OpKind::kWrite, .offset = 0, .length = kRegion, .data_seed = 7},
          {.kind = OpKind::kFlush},
          {.kind = OpKind::kWrite, .offset = kRegion + 100, .length = 700, .data_seed = 8},
          {.kind = OpKind::kFlush}};
}

TEST(CrashHarness, PassesTheRealDestination) {
  ScenarioReport report = run_scenario(1, written_and_flushed(), small_scenario());
  EXPECT_EQ(report.failure, "");
  EXPECT_GT(report.states_checked, 0u);
}

TEST(CrashHarness, CatchesAFlushThatDoesNotReachTheDisk) {
  ScenarioOptions options = small_scenario();
  options.wrap_destination = [](std::unique_ptr<DestinationDevice> d) {
    return std::unique_ptr<DestinationDevice>(
        std::make_unique<FlushThatDoesNotFlush>(std::move(d)));
  };
  ScenarioReport report = run_scenario(1, written_and_flushed(), options);
  // Caught as the metadata claiming a region whose data is not on the disk.
  EXPECT_THAT(report.failure,
              ::testing::HasSubstr("committed region holds only source or user data"));
}

TEST(CrashHarness, CatchesWritesThatNeverLand) {
  ScenarioOptions options = small_scenario();
  options.wrap_destination = [](std::unique_ptr<DestinationDevice> d) {
    return std::unique_ptr<DestinationDevice>(std::make_unique<WritesThatNeverLand>(std::move(d)));
  };
  ScenarioReport report = run_scenario(1, written_and_flushed(), options);
  EXPECT_THAT(report.failure,
              ::testing::HasSubstr("committed region holds only source or user data"));
}

}  // namespace
}  // namespace clonefs::crash
