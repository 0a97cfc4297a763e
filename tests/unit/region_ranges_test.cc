// Runs of regions as one unit: RegionLocks entries spanning many regions (a discard's whole
// middle) and RegionBitmap updates a word at a time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "engine/region_locks.h"
#include "meta/region_bitmap.h"

namespace clonefs {
namespace {

using namespace std::chrono_literals;

// Polls `done` for up to 2 s: for a thread expected to get through.
bool eventually(const std::atomic<bool>& done) {
  for (int i = 0; i < 200 && !done.load(); ++i) std::this_thread::sleep_for(10ms);
  return done.load();
}

TEST(RegionLocks, ARangeExcludesEveryRegionItCoversAndNothingElse) {
  RegionLocks locks;
  ASSERT_TRUE(locks.try_lock(100, 50));
  EXPECT_EQ(locks.in_flight(), 50u);
  EXPECT_FALSE(locks.try_lock(100));
  EXPECT_FALSE(locks.try_lock(149));
  EXPECT_FALSE(locks.try_lock(90, 11));   // ends inside
  EXPECT_FALSE(locks.try_lock(120, 5));   // inside
  EXPECT_FALSE(locks.try_lock(0, 1000));  // around
  EXPECT_TRUE(locks.try_lock(99));
  EXPECT_TRUE(locks.try_lock(150, 10));
  EXPECT_EQ(locks.in_flight(), 61u);
  locks.unlock(100);
  EXPECT_TRUE(locks.try_lock(120));
  locks.unlock(120);
  locks.unlock(99);
  locks.unlock(150);
  EXPECT_EQ(locks.in_flight(), 0u);
}

TEST(RegionLocks, WaitIdleAndLockWaitForTheRangeHoldingTheRegion) {
  RegionLocks locks;
  locks.lock(0, 1000);
  std::atomic<bool> idle{false}, locked{false};
  std::thread waiter([&] {
    locks.wait_idle(500);
    idle = true;
  });
  std::thread locker([&] {
    locks.lock(999);
    locked = true;
    locks.unlock(999);
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(idle.load());
  EXPECT_FALSE(locked.load());
  locks.unlock(0);
  EXPECT_TRUE(eventually(idle));
  EXPECT_TRUE(eventually(locked));
  waiter.join();
  locker.join();
}

// The hydrator only try_locks: while a range waits, new try_locks inside it fail, so a stream of
// batches cannot keep a discard's range from ever being free.
TEST(RegionLocks, AWaitingRangeIsNotStarvedByTryLocks) {
  RegionLocks locks;
  ASSERT_TRUE(locks.try_lock(5));
  std::atomic<bool> locked{false};
  std::thread discard([&] {
    locks.lock(0, 10);
    locked = true;
    locks.unlock(0);
  });
  for (int i = 0; i < 200 && locks.try_lock(7); ++i) {  // until the range is waiting
    locks.unlock(7);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_FALSE(locks.try_lock(7)) << "a try_lock got into a range that is waiting";
  EXPECT_TRUE(locks.try_lock(10)) << "outside the waiting range";
  locks.unlock(10);
  EXPECT_FALSE(locked.load());
  locks.unlock(5);
  EXPECT_TRUE(eventually(locked));
  discard.join();
  EXPECT_TRUE(locks.try_lock(7));
  locks.unlock(7);
}

TEST(RegionBitmap, SetRangeCountsOnlyNewlySetBitsAcrossWords) {
  RegionBitmap bitmap(1000);
  bitmap.set(70);
  bitmap.set(200);
  EXPECT_EQ(bitmap.set_range(60, 150), 148u);  // [60, 210) less 70 and 200
  EXPECT_EQ(bitmap.valid_count(), 150u);
  EXPECT_EQ(bitmap.count_valid(0, 1000), 150u);
  EXPECT_EQ(bitmap.count_valid(59, 2), 1u);
  EXPECT_EQ(bitmap.count_valid(209, 2), 1u);
  EXPECT_FALSE(bitmap.test(59));
  EXPECT_TRUE(bitmap.test(60));
  EXPECT_TRUE(bitmap.test(209));
  EXPECT_FALSE(bitmap.test(210));
  EXPECT_EQ(bitmap.set_range(60, 150), 0u);
  EXPECT_EQ(bitmap.set_range(64, 64), 0u);  // one whole word, already set
  EXPECT_EQ(bitmap.set_range(999, 1), 1u);  // the last region, in a partial last word
  EXPECT_EQ(bitmap.set_range(0, 1000), 1000u - 151u);
  EXPECT_TRUE(bitmap.all_valid());
  EXPECT_FALSE(bitmap.next_invalid(0).has_value());
}

}  // namespace
}  // namespace clonefs
