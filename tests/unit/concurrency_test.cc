// Many threads on few regions while hydration runs, checked against a reference model. Each
// thread owns a stripe of bytes in every region, so the final image is known whatever the
// interleaving, while region copies, discards, flushes and hydration race on the same regions.
// Run it under -DCLONEFS_TSAN=ON / -DCLONEFS_ASAN=ON too (scripts/test.sh does).
#include <random>
#include <thread>

#include "engine/hydrator.h"
#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

using Concurrency = EngineFixture;

TEST_F(Concurrency, OverlappingReadsWritesDiscardsAndFlushesWhileHydrating) {
  constexpr int kThreads = 8;
  constexpr uint64_t kStripe = kRegion / kThreads;
  constexpr uint64_t kRegions = 16;  // the whole regions of the fixture's image
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Hydrator hydrator(*engine_, {.batch = 2}, 2);
  std::vector<std::vector<std::byte>> models(kThreads, model_);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + static_cast<uint64_t>(t));
      auto& model = models[static_cast<size_t>(t)];
      for (int i = 0; i < 300; ++i) {
        uint64_t region = rng() % kRegions;
        uint64_t begin = region * kRegion + static_cast<uint64_t>(t) * kStripe;
        uint64_t offset = begin + rng() % (kStripe / 2);
        uint64_t length = 1 + rng() % (begin + kStripe - offset);
        switch (rng() % 5) {
          case 0:
          case 1: {
            auto bytes = random_bytes(length, rng());
            if (!engine_->write(offset, bytes).is_ok()) ++failures;
            std::copy(bytes.begin(), bytes.end(), model.begin() + static_cast<long>(offset));
            break;
          }
          case 2:
            if (!engine_->discard(offset, length).is_ok()) ++failures;
            std::fill_n(model.begin() + static_cast<long>(offset), length, std::byte{0});
            break;
          case 3: {
            std::vector<std::byte> got(kStripe);
            if (!engine_->read(begin, got).is_ok()) ++failures;
            if (!std::equal(got.begin(), got.end(), model.begin() + static_cast<long>(begin)))
              ++failures;
            break;
          }
          default:
            if (!engine_->flush().is_ok()) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    for (uint64_t r = 0; r < kRegions; ++r) {
      auto at = static_cast<long>(r * kRegion + static_cast<uint64_t>(t) * kStripe);
      std::copy_n(models[static_cast<size_t>(t)].begin() + at, kStripe, model_.begin() + at);
    }
  }
  expect_image_matches_model();
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(20)));
  hydrator.stop();
  ASSERT_TRUE(engine_->close().is_ok());
  crash_and_reopen();
  expect_image_matches_model();
  EXPECT_TRUE(engine_->bitmap().all_valid());
}

}  // namespace
}  // namespace clonefs::testing
