// docs/SEMANTICS.md "Hydration": background copy through the engine, holes and zeros skipped,
// controls honoured, source errors bounded.
#include "engine/hydrator.h"

#include <thread>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

using Hydration = EngineFixture;

TEST_F(Hydration, HydratesEverythingAndTheDestinationAloneIsTheImage) {
  ASSERT_TRUE(write(3 * kRegion + 9, random_bytes(100, 1)).is_ok());
  Hydrator hydrator(*engine_, {});
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_TRUE(read_file(dir_.file("dest.img")) == model_);
  EXPECT_TRUE(hydrator.status().complete);
}

TEST_F(Hydration, AllZeroRegionsAreNotCopied) {
  // A source with zero regions: they become valid without a write.
  std::vector<std::byte> sparse(kImageSize);
  auto data = random_bytes(kRegion, 3);
  std::copy(data.begin(), data.end(), sparse.begin() + 2 * kRegion);
  write_file(dir_.file("source.img"), sparse);
  model_ = sparse;
  open_engine();
  Hydrator hydrator(*engine_, {});
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
  EXPECT_EQ(engine_->counters().regions_copied.load(), 1u);
  EXPECT_EQ(engine_->counters().regions_skipped.load(), engine_->geometry().region_count() - 1);
  expect_image_matches_model();
}

TEST_F(Hydration, PausedHydrationMakesNoProgressAndResumes) {
  Hydrator hydrator(*engine_, {.paused = true});
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u);
  EXPECT_EQ(hydrator.status().state, HydrationState::kPaused);
  hydrator.set_paused(false);
  EXPECT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
}

// Issue #18: minutes after the copy ended, status still said "running" at the last rate seen.
// Slow reads keep the copy going past one rate window, so a rate was measured.
TEST_F(Hydration, IdleAfterCompletionReportsNoRateAndComplete) {
  source_->read_delay_ms = 100;
  Hydrator hydrator(*engine_, {.threshold = 1, .batch = 1});
  EXPECT_EQ(hydrator.status().state, HydrationState::kRunning);
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  HydrationStatus status = hydrator.status();
  EXPECT_EQ(status.rate_bytes_per_s, 0.0);
  EXPECT_EQ(status.state, HydrationState::kComplete);
  EXPECT_EQ(status.eta_seconds, 0.0);
}

TEST_F(Hydration, NeverOverwritesWhatTheUserWrote) {
  Hydrator hydrator(*engine_, {.batch = 1});
  for (uint64_t r = 0; r < 16; ++r)
    ASSERT_TRUE(write(r * kRegion + 11, random_bytes(40, r)).is_ok());
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
  expect_image_matches_model();
}

// dm-clone's hydration_threshold: regions in flight. With batches of one region the source sees
// exactly `threshold` reads at once, also when the threshold is raised after the start...
TEST_F(Hydration, CopiesThresholdOverBatchBatchesAtOnce) {
  source_->read_delay_ms = 50;
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 1});
  hydrator.set_threshold(5);
  hydrator.set_paused(false);
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(20)));
  EXPECT_EQ(source_->most_reading.load(), 5);
}

// ...and never more than the worker cap.
TEST_F(Hydration, BatchesInFlightAreCappedByTheWorkers) {
  source_->read_delay_ms = 50;
  Hydrator hydrator(*engine_, {.threshold = 64, .batch = 1});
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(20)));
  EXPECT_EQ(source_->most_reading.load(), static_cast<int>(kMaxHydrationWorkers));
}

TEST_F(Hydration, UnreadableRegionsAreReportedFailedNotRetriedForever) {
  source_->fail_read = EIO;
  Hydrator hydrator(*engine_, {.batch = 4}, 1, 1);
  for (int i = 0; i < 300 && hydrator.status().failed_regions < engine_->geometry().region_count();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  HydrationStatus status = hydrator.status();
  EXPECT_EQ(status.failed_regions, engine_->geometry().region_count());
  EXPECT_FALSE(status.complete);
  EXPECT_EQ(status.state, HydrationState::kIdle);
  EXPECT_NE(status.state_reason.find("source"), std::string::npos) << status.state_reason;
  int reads = source_->reads.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(source_->reads.load(), reads) << "failed regions are retried without end";
  std::vector<std::byte> buf(10);
  EXPECT_EQ(engine_->read(0, buf).code(), EIO);
}

// Unmount stops the hydrator: however many regions a failing batch still has to retry, with
// backoff, stop() must not wait them out (at batch 256 that was 0.84 s per region).
TEST_F(Hydration, StopReturnsPromptlyWhileRetryingAFailingSource) {
  source_->fail_read = EIO;
  Hydrator hydrator(*engine_, {.threshold = 256, .batch = 256});
  // One read for the batch, then one per attempt: past three, the retries are under way.
  for (int i = 0; i < 500 && source_->reads.load() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(source_->reads.load(), 3) << "the worker never got to its retries";
  auto asked = std::chrono::steady_clock::now();
  hydrator.stop();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - asked);
  EXPECT_LT(took.count(), 2000) << "stop() took " << took.count() << " ms";
  EXPECT_FALSE(hydrator.status().running);
}

}  // namespace
}  // namespace clonefs::testing
