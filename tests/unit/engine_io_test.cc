// docs/SEMANTICS.md "Operations on the image", through the engine's public interface.
#include <unistd.h>

#include <thread>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

using IoRules = EngineFixture;

TEST_F(IoRules, FreshCloneReadsTheSourceNotTheDestination) {
  // Garbage in the destination must never show through an invalid region.
  auto garbage = random_bytes(kImageSize, 7);
  ASSERT_TRUE(real_dest_->write_at(0, garbage).is_ok());
  expect_image_matches_model();
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u);
}

TEST_F(IoRules, WholeRegionWriteSkipsTheCopy) {
  ASSERT_TRUE(write(3 * kRegion, random_bytes(kRegion, 1)).is_ok());
  EXPECT_TRUE(engine_->bitmap().test(3));
  EXPECT_EQ(engine_->counters().regions_copied.load(), 0u);
  EXPECT_EQ(source_->reads.load(), 0);
  expect_image_matches_model();
}

TEST_F(IoRules, PartialWriteCopiesTheRegionFirst) {
  ASSERT_TRUE(write(5 * kRegion + 100, random_bytes(333, 2)).is_ok());
  EXPECT_TRUE(engine_->bitmap().test(5));
  EXPECT_EQ(engine_->counters().regions_copied.load(), 1u);
  // The rest of the region still reads the source, now from the destination.
  std::vector<std::byte> dest(kRegion);
  ASSERT_TRUE(real_dest_->read_at(5 * kRegion, dest).is_ok());
  EXPECT_TRUE(dest == model(5 * kRegion, kRegion));
  expect_image_matches_model();
}

TEST_F(IoRules, UnalignedWriteAcrossRegionsAndTheShortLastRegion) {
  ASSERT_TRUE(write(kRegion - 10, random_bytes(3 * kRegion, 3)).is_ok());
  ASSERT_TRUE(write(kImageSize - 700, random_bytes(700, 4)).is_ok());
  EXPECT_TRUE(engine_->bitmap().test(0));
  EXPECT_TRUE(engine_->bitmap().test(3));
  EXPECT_TRUE(engine_->bitmap().test(16));
  expect_image_matches_model();
}

TEST_F(IoRules, WriteToValidRegionGoesStraightToTheDestination) {
  ASSERT_TRUE(write(2 * kRegion, random_bytes(kRegion, 5)).is_ok());
  int reads = source_->reads.load();
  ASSERT_TRUE(write(2 * kRegion + 7, random_bytes(9, 6)).is_ok());
  EXPECT_EQ(source_->reads.load(), reads);
  expect_image_matches_model();
}

// A reader that takes bytes straight from a descriptor (fuse/spliced_reads.h) is given the
// destination only for a range of valid regions, whose bytes there are the image's.
TEST_F(IoRules, OnlyWhollyValidRangesAreAnsweredWithTheDestination) {
  ASSERT_TRUE(write(2 * kRegion, random_bytes(3 * kRegion, 8)).is_ok());  // regions 2, 3, 4
  auto inside = engine_->valid_destination(2 * kRegion + 10, 3 * kRegion - 20);
  ASSERT_TRUE(inside.is_ok()) << inside.status().message();
  ASSERT_EQ(*inside, real_dest_->file_descriptor());
  std::vector<std::byte> direct(3 * kRegion - 20);
  ASSERT_EQ(::pread(*inside, direct.data(), direct.size(), 2 * kRegion + 10),
            static_cast<ssize_t>(direct.size()));
  EXPECT_TRUE(direct == model(2 * kRegion + 10, 3 * kRegion - 20));
  auto straddling = engine_->valid_destination(kRegion, 2 * kRegion);  // region 1 invalid
  ASSERT_TRUE(straddling.is_ok());
  EXPECT_EQ(*straddling, -1);
  auto past_valid = engine_->valid_destination(4 * kRegion, kRegion + 1);  // into region 5
  ASSERT_TRUE(past_valid.is_ok());
  EXPECT_EQ(*past_valid, -1);
  EXPECT_EQ(engine_->valid_destination(kImageSize - 5, 10).status().code(), EINVAL);
}

TEST_F(IoRules, RangesPastTheEndAreRefused) {
  std::vector<std::byte> buf(10);
  EXPECT_EQ(engine_->read(kImageSize - 5, buf).code(), EINVAL);
  EXPECT_EQ(engine_->write(kImageSize, buf).code(), EINVAL);
  EXPECT_EQ(engine_->discard(kImageSize - 1, 2).code(), EINVAL);
}

TEST_F(IoRules, DiscardMakesWholeRegionsValidWithoutCopyAndReadsZeros) {
  ASSERT_TRUE(engine_->discard(kRegion, 2 * kRegion).is_ok());
  std::fill(model_.begin() + kRegion, model_.begin() + 3 * kRegion, std::byte{0});
  EXPECT_TRUE(engine_->bitmap().test(1));
  EXPECT_TRUE(engine_->bitmap().test(2));
  EXPECT_EQ(engine_->counters().regions_copied.load(), 0u);
  EXPECT_EQ(source_->reads.load(), 0);
  expect_image_matches_model();
}

TEST_F(IoRules, PartialDiscardZeroesOnlyItsRange) {
  ASSERT_TRUE(engine_->discard(4 * kRegion + 512, 1024).is_ok());
  std::fill(model_.begin() + 4 * kRegion + 512, model_.begin() + 4 * kRegion + 1536, std::byte{0});
  ASSERT_TRUE(write(6 * kRegion, random_bytes(kRegion, 9)).is_ok());
  ASSERT_TRUE(engine_->discard(6 * kRegion + 100, 50).is_ok());
  std::fill(model_.begin() + 6 * kRegion + 100, model_.begin() + 6 * kRegion + 150, std::byte{0});
  expect_image_matches_model();
}

TEST_F(IoRules, FailedCopyFailsTheWriteWithEioAndLeavesTheRegionInvalid) {
  source_->fail_read = EIO;
  Status st = engine_->write(7 * kRegion + 1, random_bytes(10, 1));
  EXPECT_EQ(st.code(), EIO);
  EXPECT_NE(st.message().find("source.img"), std::string::npos) << st.message();
  EXPECT_FALSE(engine_->bitmap().test(7));
  source_->fail_read = 0;
  expect_image_matches_model();
}

TEST_F(IoRules, CopyOnReadHydratesWhatIsRead) {
  open_engine({.copy_on_read = true, .commit_period = std::chrono::milliseconds(0)});
  ASSERT_TRUE(engine_);
  EXPECT_TRUE(read(9 * kRegion + 5, 10) == model(9 * kRegion + 5, 10));
  EXPECT_TRUE(engine_->bitmap().test(9));
  EXPECT_EQ(engine_->counters().regions_copied.load(), 1u);
}

TEST_F(IoRules, ConcurrentOverlappingWritesOnFewRegionsMatchTheModel) {
  // Each thread owns distinct byte offsets inside the same few regions, so the final content is
  // known whatever the interleaving; partial writes race with each other's region copies.
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        uint64_t region = static_cast<uint64_t>(i % 4);
        uint64_t offset = region * kRegion + static_cast<uint64_t>(t) * 64 + (i % 7);
        auto bytes = random_bytes(16, static_cast<uint64_t>(t * 1000 + i));
        ASSERT_TRUE(engine_->write(offset, bytes).is_ok());
        if (i % 50 == 0) {
          ASSERT_TRUE(engine_->flush().is_ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  // Rebuild the model in the same per-thread order (threads never overlap each other).
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 200; ++i) {
      uint64_t offset =
          static_cast<uint64_t>(i % 4) * kRegion + static_cast<uint64_t>(t) * 64 + (i % 7);
      auto bytes = random_bytes(16, static_cast<uint64_t>(t * 1000 + i));
      std::copy(bytes.begin(), bytes.end(), model_.begin() + static_cast<long>(offset));
    }
  }
  expect_image_matches_model();
}

}  // namespace
}  // namespace clonefs::testing
