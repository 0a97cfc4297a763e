// Discards and writes coalesce: a run of whole regions is one punch, or one destination write, and
// one bitmap update, whatever its length (blkdiscard of a 16 TiB image at 4 KiB regions must not
// be billions of syscalls; a 1 MiB write into fresh 16 KiB regions was 64 writes), while partial
// head and tail regions keep the source's bytes around the range.
#include <gtest/gtest.h>

#include "engine/clone.h"
#include "support/io_probe_devices.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kRegion = 4096;
constexpr uint64_t kSize = 24 * kRegion + 1000;  // 24 whole regions and a short last one

class RegionRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = random_bytes(kSize, 21);
    write_file(dir_.file("source.img"), model_);
    ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("dest.img"), dir_.file("meta.db"),
                              kRegion, false})
                    .is_ok());
    auto clone = open_probed(dir_.file("meta.db"), probes_);
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    clone_ = std::move(*clone);
  }
  CloneEngine& engine() { return clone_->engine(); }
  Status discard(uint64_t offset, uint64_t length) {
    Status st = engine().discard(offset, length);
    if (st.is_ok()) std::fill_n(model_.begin() + static_cast<long>(offset), length, std::byte{0});
    return st;
  }
  Status write(uint64_t offset, const std::vector<std::byte>& bytes) {
    Status st = engine().write(offset, bytes);
    if (st.is_ok())
      std::copy(bytes.begin(), bytes.end(), model_.begin() + static_cast<long>(offset));
    return st;
  }
  void expect_image_matches_model() {
    std::vector<std::byte> image(kSize);
    ASSERT_TRUE(engine().read(0, image).is_ok());
    EXPECT_TRUE(image == model_)
        << "image differs from the source with the discarded ranges zeroed";
  }

  TempDir dir_;
  Probes probes_;
  std::unique_ptr<Clone> clone_;
  std::vector<std::byte> model_;
};

TEST_F(RegionRuns, WholeRegionsValidOrNotAreOnePunchAndAllBecomeValid) {
  ASSERT_TRUE(clone_);
  auto bytes = random_bytes(kRegion, 3);
  ASSERT_TRUE(engine().write(5 * kRegion, bytes).is_ok());  // one region of the run valid already
  std::copy(bytes.begin(), bytes.end(), model_.begin() + 5 * kRegion);
  probes_.destination->punches = 0;
  ASSERT_TRUE(discard(2 * kRegion, 10 * kRegion).is_ok());
  EXPECT_EQ(probes_.destination->punches.load(), 1);
  for (uint64_t r = 2; r < 12; ++r) EXPECT_TRUE(engine().bitmap().test(r)) << "region " << r;
  EXPECT_FALSE(engine().bitmap().test(1));
  EXPECT_FALSE(engine().bitmap().test(12));
  EXPECT_EQ(engine().counters().regions_skipped.load(), 9u);
  EXPECT_EQ(engine().counters().regions_copied.load(), 0u);
  expect_image_matches_model();
}

TEST_F(RegionRuns, PartialHeadAndTailKeepTheSourceAroundOnePunchedMiddle) {
  ASSERT_TRUE(clone_);
  ASSERT_TRUE(discard(kRegion + 100, 12 * kRegion).is_ok());
  EXPECT_EQ(probes_.destination->punches.load(), 1) << "regions 2..12 whole, 1 and 13 partial";
  for (uint64_t r = 1; r <= 13; ++r) EXPECT_TRUE(engine().bitmap().test(r)) << "region " << r;
  EXPECT_EQ(engine().counters().regions_copied.load(), 2u) << "the partial head and tail";
  expect_image_matches_model();
}

TEST_F(RegionRuns, TheWholeImageWithItsShortLastRegion) {
  ASSERT_TRUE(clone_);
  ASSERT_TRUE(discard(0, kSize).is_ok());
  EXPECT_EQ(probes_.destination->punches.load(), 1);
  EXPECT_TRUE(engine().bitmap().all_valid());
  expect_image_matches_model();
  ASSERT_TRUE(engine().flush().is_ok());
}

TEST_F(RegionRuns, WithinOneRegionAndAcrossTwoPartialOnes) {
  ASSERT_TRUE(clone_);
  ASSERT_TRUE(discard(3 * kRegion + 10, 20).is_ok());
  ASSERT_TRUE(discard(7 * kRegion + 4000, 200).is_ok());
  EXPECT_TRUE(engine().bitmap().test(3));
  EXPECT_TRUE(engine().bitmap().test(7));
  EXPECT_TRUE(engine().bitmap().test(8));
  ASSERT_TRUE(discard(3 * kRegion + 1000, 30).is_ok());  // a valid region: punched as it is
  expect_image_matches_model();
}

TEST_F(RegionRuns, AWriteOfWholeRegionsValidOrNotIsOneDestinationWrite) {
  ASSERT_TRUE(clone_);
  ASSERT_TRUE(write(6 * kRegion, random_bytes(kRegion, 4)).is_ok());  // valid inside the run
  probes_.destination->writes = 0;
  // Partial head (region 1), whole regions 2..11, partial tail (region 12).
  ASSERT_TRUE(write(kRegion + 100, random_bytes(11 * kRegion, 5)).is_ok());
  EXPECT_EQ(probes_.destination->writes.load(), 3) << "head copy, the whole run, tail copy";
  for (uint64_t r = 1; r <= 12; ++r) EXPECT_TRUE(engine().bitmap().test(r)) << "region " << r;
  EXPECT_FALSE(engine().bitmap().test(13));
  EXPECT_EQ(engine().counters().regions_copied.load(), 2u) << "only the partial head and tail";
  expect_image_matches_model();
  ASSERT_TRUE(engine().flush().is_ok());
}

TEST_F(RegionRuns, AWriteEndingInTheShortLastRegionCoversItWhole) {
  ASSERT_TRUE(clone_);
  ASSERT_TRUE(write(20 * kRegion, random_bytes(kSize - 20 * kRegion, 6)).is_ok());
  EXPECT_EQ(probes_.destination->writes.load(), 1);
  EXPECT_FALSE(engine().bitmap().test(19));
  for (uint64_t r = 20; r <= 24; ++r) EXPECT_TRUE(engine().bitmap().test(r)) << "region " << r;
  EXPECT_EQ(engine().counters().regions_copied.load(), 0u);
  expect_image_matches_model();
}

}  // namespace
}  // namespace clonefs::testing
