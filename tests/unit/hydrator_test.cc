// docs/SEMANTICS.md "Hydration": background copy through the engine, holes and zeros skipped,
// controls honoured, source errors bounded, regions user reads wait on first. Tests that depend
// on time step a manual clock (support/manual_clock.h) and look once the workers have settled:
// none sleeps, none depends on the machine's speed.
#include "engine/hydrator.h"

#include <mutex>

#include "support/engine_fixture.h"
#include "support/manual_clock.h"

namespace clonefs::testing {
namespace {

constexpr auto kSettle = std::chrono::seconds(20);  // only a hang takes this long

class Hydration : public EngineFixture {
 protected:
  // Region indices of the source reads from now on, in order: with one worker, the order the
  // regions are hydrated in.
  void record_reads() {
    source_->before_read = [this](uint64_t offset) {
      std::lock_guard lock(reads_mu_);
      read_regions_.push_back(offset / kRegion);
    };
  }
  std::vector<uint64_t> read_regions() {
    std::lock_guard lock(reads_mu_);
    return read_regions_;
  }
  void read_region(uint64_t region) { (void)read(region * kRegion, kRegion); }

  ManualClock clock_;
  std::mutex reads_mu_;
  std::vector<uint64_t> read_regions_;
};

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
  Hydrator hydrator(*engine_, {.paused = true}, kMaxHydrationWorkers, 3, clock_);
  ASSERT_TRUE(hydrator.settle(kSettle));
  clock_.advance(std::chrono::hours(1));
  ASSERT_TRUE(hydrator.settle(kSettle));
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u);
  EXPECT_EQ(hydrator.status().state, HydrationState::kPaused);
  hydrator.set_paused(false);
  EXPECT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
}

// Issue #18: minutes after the copy ended, status still said "running" at the last rate seen.
// Each read takes 100 ms of the clock, so the copy spans rate windows and a rate is measured.
TEST_F(Hydration, IdleAfterCompletionReportsNoRateAndComplete) {
  source_->before_read = [this](uint64_t) { clock_.advance(std::chrono::milliseconds(100)); };
  Hydrator hydrator(*engine_, {.threshold = 1, .batch = 1}, kMaxHydrationWorkers, 3, clock_);
  EXPECT_EQ(hydrator.status().state, HydrationState::kRunning);
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(20)));
  ASSERT_TRUE(hydrator.settle(kSettle));
  EXPECT_GT(hydrator.status().rate_bytes_per_s, 0.0) << "no rate measured: the test proves nothing";
  clock_.advance(std::chrono::milliseconds(2500));
  HydrationStatus status = hydrator.status();
  EXPECT_EQ(status.rate_bytes_per_s, 0.0);
  EXPECT_EQ(status.state, HydrationState::kComplete);
  EXPECT_EQ(status.eta_seconds, 0.0);
}

// User I/O goes first: while it is recent, one batch of address order trickles per interval;
// once the user has been quiet for the grace period, the rest follows. (A flush: user I/O that
// asks for no region.)
TEST_F(Hydration, RecentUserIoHoldsHydrationToATrickle) {
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 1}, kMaxHydrationWorkers, 3,
                    clock_);
  ASSERT_TRUE(engine_->flush().is_ok());
  hydrator.set_paused(false);
  ASSERT_TRUE(hydrator.settle(kSettle));
  EXPECT_EQ(engine_->bitmap().valid_count(), 1u) << "more than the trickle while the user reads";
  clock_.advance(std::chrono::milliseconds(20));
  EXPECT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
}

// ...but regions reads wait on are the user's own: they go at once, while address order waits
// for the user to be quiet.
TEST_F(Hydration, RegionsReadsWaitOnDoNotWaitForTheUserToBeQuiet) {
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 1}, kMaxHydrationWorkers, 3,
                    clock_);
  read_region(14);
  read_region(7);
  record_reads();
  hydrator.set_paused(false);
  ASSERT_TRUE(hydrator.settle(kSettle));
  const std::vector<uint64_t> expected{7, 14};
  EXPECT_EQ(read_regions(), expected);
  clock_.advance(std::chrono::milliseconds(20));
  EXPECT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
}

// Issue #27 part 3: reads that fall through while hydration is paused are queued for later and
// wake no worker (a broadcast for every read of a sequential reader: 55,000 context switches and
// twice the CPU time for 768 MiB); resuming wakes them, and they take those regions first.
TEST_F(Hydration, ReadsWhilePausedWakeNoWorker) {
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 1}, kMaxHydrationWorkers, 3,
                    clock_);
  ASSERT_TRUE(hydrator.settle(kSettle));
  const uint64_t before = hydrator.wakeups();
  for (uint64_t r : {9, 10, 11, 12}) read_region(r);
  EXPECT_EQ(hydrator.wakeups(), before) << "reads while paused woke the workers";
  record_reads();
  hydrator.set_paused(false);
  EXPECT_GT(hydrator.wakeups(), before);
  ASSERT_TRUE(hydrator.settle(kSettle));
  const std::vector<uint64_t> expected{12, 11, 10, 9};  // the newest read first
  EXPECT_EQ(read_regions(), expected);
  clock_.advance(std::chrono::milliseconds(20));
  EXPECT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
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
  Hydrator hydrator(*engine_, {.batch = 4}, 1, 1, clock_);
  const uint64_t regions = engine_->geometry().region_count();
  // Each retry waits out its backoff on the clock: step it until every region has failed.
  for (int i = 0; i < 1000 && hydrator.status().failed_regions < regions; ++i) {
    ASSERT_TRUE(hydrator.settle(kSettle));
    clock_.advance(std::chrono::milliseconds(100));
  }
  HydrationStatus status = hydrator.status();
  EXPECT_EQ(status.failed_regions, regions);
  EXPECT_FALSE(status.complete);
  EXPECT_EQ(status.state, HydrationState::kIdle);
  EXPECT_NE(status.state_reason.find("source"), std::string::npos) << status.state_reason;
  ASSERT_TRUE(hydrator.settle(kSettle));
  int reads = source_->reads.load();
  clock_.advance(std::chrono::hours(1));
  ASSERT_TRUE(hydrator.settle(kSettle));
  EXPECT_EQ(source_->reads.load(), reads) << "failed regions are retried without end";
  std::vector<std::byte> buf(10);
  EXPECT_EQ(engine_->read(0, buf).code(), EIO);
}

// Issue #26: reads that failed while a remote source was going away (before its connections
// were seen to be lost) say nothing about the regions: once the source has reconnected they are
// tried again, and hydration completes.
TEST_F(Hydration, RegionsThatFailedBeforeTheSourceReconnectedAreTriedAgain) {
  source_->reconnects = 0;
  source_->fail_read = EIO;
  Hydrator hydrator(*engine_, {.batch = 4}, 1, 1, clock_);
  const uint64_t regions = engine_->geometry().region_count();
  for (int i = 0; i < 1000 && hydrator.status().failed_regions < regions; ++i) {
    ASSERT_TRUE(hydrator.settle(kSettle));
    clock_.advance(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(hydrator.status().failed_regions, regions);
  source_->fail_read = 0;
  source_->reconnects = 1;
  for (int i = 0; i < 1000 && !hydrator.status().complete; ++i) {
    ASSERT_TRUE(hydrator.settle(kSettle));
    clock_.advance(std::chrono::milliseconds(100));
  }
  HydrationStatus status = hydrator.status();
  EXPECT_TRUE(status.complete);
  EXPECT_EQ(status.failed_regions, 0u);
  expect_image_matches_model();
}

// Unmount stops the hydrator: however many regions a failing batch still has to retry, with
// backoff, stop() must not wait them out (at batch 256 that was 0.84 s per region). The clock
// never moves here, so a stop() that waited for a backoff would never return.
TEST_F(Hydration, StopReturnsWhileRetryingAFailingSource) {
  source_->fail_read = EIO;
  Hydrator hydrator(*engine_, {.threshold = 256, .batch = 256}, kMaxHydrationWorkers, 3, clock_);
  ASSERT_TRUE(hydrator.settle(kSettle));
  // One read for the batch, then one per attempt: the worker sleeps in its first backoff.
  ASSERT_EQ(source_->reads.load(), 2) << "the worker never got to its retries";
  hydrator.stop();
  EXPECT_FALSE(hydrator.status().running);
}

// Issue 13: a read that falls through to the source puts its region first. Rate-limited to one
// region per second of the clock, the far region read is the second copied, before every region
// below it; and the limit still holds. (Part of the region: a whole one is written through.)
TEST_F(Hydration, AFallThroughReadIsHydratedBeforeLowerRegions) {
  Hydrator hydrator(*engine_, {.threshold = 1, .batch = 1, .rate = kRegion}, kMaxHydrationWorkers,
                    3, clock_);
  ASSERT_TRUE(hydrator.settle(kSettle));  // region 0 copied, the worker waits for the budget
  ASSERT_TRUE(engine_->bitmap().test(0));
  (void)read(12 * kRegion + 100, 1000);
  clock_.advance(std::chrono::seconds(1));
  ASSERT_TRUE(hydrator.settle(kSettle));
  EXPECT_TRUE(engine_->bitmap().test(12)) << "the region read was not hydrated next";
  EXPECT_EQ(engine_->bitmap().valid_count(), 2u) << "the rate limit did not hold";
  for (uint64_t r = 1; r < 12; ++r) EXPECT_FALSE(engine_->bitmap().test(r)) << "region " << r;
}

// Fall-through reads queue the regions after them too (readahead: 4 reads' worth, doubling while
// the reads are sequential), newest request first; then the rest in address order. The regions
// a read holds whole it writes through itself: they are not queued.
TEST_F(Hydration, FallThroughReadsQueueTheRegionsAfterThem) {
  Hydrator hydrator(*engine_, {.threshold = 1, .batch = 1, .rate = kRegion}, kMaxHydrationWorkers,
                    3, clock_);
  ASSERT_TRUE(hydrator.settle(kSettle));  // region 0 copied, the worker waits for the budget
  read_region(9);                         // written through; 10-13 queued
  read_region(1);                         // 2-5
  read_region(2);                         // follows 1: 3-10
  EXPECT_EQ(hydrator.status().priority_regions, 10u);  // 3-8 and 10-13, each once
  clock_.advance(std::chrono::milliseconds(20));       // the user is quiet
  record_reads();
  hydrator.set_rate(0);
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
  const std::vector<uint64_t> expected{3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(read_regions(), expected);
  EXPECT_EQ(hydrator.status().priority_regions, 0u);
}

// Paused, a read queues its own regions and no readahead: by the resume its stream has moved on.
TEST_F(Hydration, ReadsWhilePausedQueueNoReadahead) {
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 1}, kMaxHydrationWorkers, 3,
                    clock_);
  read_region(9);
  read_region(10);
  EXPECT_EQ(hydrator.status().priority_regions, 2u);
}

// A plan (a recorded profile, file hints) goes in its order before address order, after
// on-demand requests; regions already valid are skipped, runs past the image cut.
TEST_F(Hydration, ThePlanGoesFirstInItsOrder) {
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 4}, kMaxHydrationWorkers, 3,
                    clock_);
  ASSERT_TRUE(write(11 * kRegion, random_bytes(kRegion, 5)).is_ok());
  hydrator.set_plan({{10, 3}, {2, 1}, {15, 100}});
  HydrationStatus before = hydrator.status();
  EXPECT_EQ(before.plan_regions, 6u);       // 10-12, 2, 15-16
  EXPECT_EQ(before.plan_regions_left, 5u);  // 11 was written
  read_region(7);
  clock_.advance(std::chrono::milliseconds(20));
  record_reads();
  hydrator.set_paused(false);
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
  // Batches of up to 4: 7 (read while paused: no readahead); 10; 12; 2; 15-16; then 0-1, 3-6,
  // 8-9, 13-14 in address order.
  const std::vector<uint64_t> expected{7, 10, 12, 2, 15, 0, 3, 8, 13};
  EXPECT_EQ(read_regions(), expected);
  EXPECT_EQ(hydrator.status().plan_regions_left, 0u);
}

// While hydration runs with priority, a read of whole invalid regions writes them through: they
// are valid once the read returns, hydration never reads them again, and it copies the regions
// after them first (readahead from the first read of a stream).
TEST_F(Hydration, ReadsWriteThroughWhileHydrationRunsAndTheirReadaheadGoesFirst) {
  Hydrator hydrator(*engine_, {.threshold = 1, .batch = 1, .rate = kRegion}, kMaxHydrationWorkers,
                    3, clock_);
  ASSERT_TRUE(hydrator.settle(kSettle));  // region 0 copied, the worker waits for the budget
  record_reads();
  read_region(12);
  EXPECT_TRUE(engine_->bitmap().test(12)) << "the region read was not written through";
  clock_.advance(std::chrono::seconds(1));
  ASSERT_TRUE(hydrator.settle(kSettle));
  const std::vector<uint64_t> expected{12, 13};  // the read itself, then its readahead
  EXPECT_EQ(read_regions(), expected);
  EXPECT_EQ(engine_->bitmap().valid_count(), 3u) << "the rate limit did not hold";
  EXPECT_EQ(engine_->counters().bytes_written_through.load(), kRegion);
}

// Paused (--no-hydration) or without priority (--no-priority), reads write nothing.
TEST_F(Hydration, NoWriteThroughWhenPausedOrWithoutPriority) {
  Hydrator hydrator(*engine_, {.paused = true, .threshold = 1, .batch = 1, .rate = kRegion},
                    kMaxHydrationWorkers, 3, clock_);
  read_region(12);
  EXPECT_FALSE(engine_->bitmap().test(12));
  hydrator.set_on_demand(false);
  hydrator.set_paused(false);
  ASSERT_TRUE(hydrator.settle(kSettle));  // region 0 copied, the worker waits for the budget
  read_region(13);
  EXPECT_FALSE(engine_->bitmap().test(13));
  hydrator.set_on_demand(true);
  read_region(14);
  EXPECT_TRUE(engine_->bitmap().test(14));
}

}  // namespace
}  // namespace clonefs::testing
