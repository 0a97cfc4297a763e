#include <gtest/gtest.h>

#include "meta/geometry.h"
#include "meta/region_bitmap.h"

namespace clonefs {
namespace {

TEST(Geometry, RegionSizeMustBeAPowerOfTwoFrom4KiBTo1GiB) {
  EXPECT_EQ(Geometry::make(1 << 20, 3000).status().code(), EINVAL);
  EXPECT_EQ(Geometry::make(1 << 20, 2048).status().code(), EINVAL);
  EXPECT_EQ(Geometry::make(1 << 20, uint64_t{2} << 30).status().code(), EINVAL);
  EXPECT_TRUE(Geometry::make(1 << 20, 4096).is_ok());
  EXPECT_TRUE(Geometry::make(1 << 20, uint64_t{1} << 30).is_ok());
  EXPECT_EQ(Geometry::make(0, 4096).status().code(), EINVAL);
}

TEST(Geometry, TheLastRegionMayBeShort) {
  auto g = Geometry::make(10 * 4096 + 5, 4096);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->region_count(), 11u);
  EXPECT_EQ(g->region_extent(10).length(), 5u);
  EXPECT_EQ(g->region_of(10 * 4096 + 4), 10u);
}

TEST(Geometry, SixteenTiBAt4KiBRegionsFits) {
  auto g = Geometry::make(uint64_t{16} << 40, 4096);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g->region_count(), uint64_t{1} << 32);
}

TEST(RegionBitmap, CostsOneBitPerRegion) {
  // 1 TiB at 64 KiB regions: 16 Mi regions, 2 MiB of bitmap.
  RegionBitmap bitmap((uint64_t{1} << 40) / (64 << 10));
  EXPECT_EQ(bitmap.memory_bytes(), 2u << 20);
}

TEST(RegionBitmap, ChunkImagesRoundTripAndRejectBitsPastTheEnd) {
  RegionBitmap a(kRegionsPerChunk + 10);
  a.set(0);
  a.set(9);
  a.set(kRegionsPerChunk + 9);
  RegionBitmap b(kRegionsPerChunk + 10);
  for (uint64_t c = 0; c < a.chunk_count(); ++c)
    ASSERT_TRUE(b.load_chunk(c, a.chunk_image(c)).is_ok());
  EXPECT_EQ(b.valid_count(), 3u);
  EXPECT_TRUE(b.test(kRegionsPerChunk + 9));
  auto last = a.chunk_image(1);
  EXPECT_EQ(last.size(), 2u);
  last[1] |= std::byte{0x80};  // region kRegionsPerChunk + 15 does not exist
  EXPECT_FALSE(b.load_chunk(1, last).is_ok());
  EXPECT_FALSE(b.load_chunk(0, std::vector<std::byte>(3)).is_ok());
}

TEST(RegionBitmap, NextInvalidSkipsValidRegions) {
  RegionBitmap bitmap(200);
  for (uint64_t r = 0; r < 130; ++r) bitmap.set(r);
  EXPECT_EQ(bitmap.next_invalid(0), 130u);
  bitmap.set(199);
  EXPECT_EQ(bitmap.next_invalid(198), 198u);
  for (uint64_t r = 130; r < 199; ++r) bitmap.set(r);
  EXPECT_FALSE(bitmap.next_invalid(0).has_value());
  EXPECT_TRUE(bitmap.all_valid());
}

}  // namespace
}  // namespace clonefs
