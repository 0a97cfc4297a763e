// Write-through of fall-through reads (engine/write_through.cc): the whole invalid regions a read
// fetched from the source are written into the destination and made valid by the same commit
// rule as any copy; partial regions, read-only mode and failed writes leave regions invalid.
#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

using WriteThrough = EngineFixture;

std::vector<std::byte> dest_bytes(const std::string& path, uint64_t offset, uint64_t length) {
  std::vector<std::byte> all = read_file(path);
  return {all.begin() + static_cast<long>(offset),
          all.begin() + static_cast<long>(offset + length)};
}

TEST_F(WriteThrough, AReadMakesTheWholeRegionsItFetchedValidWithOneSourceRead) {
  engine_->set_write_through(true);
  // Half of region 5, regions 6 and 7 whole, half of region 8.
  const uint64_t offset = 5 * kRegion + kRegion / 2, length = 3 * kRegion;
  EXPECT_TRUE(read(offset, length) == model(offset, length));
  EXPECT_EQ(source_->reads.load(), 1);
  for (uint64_t r = 0; r < 17; ++r) EXPECT_EQ(engine_->bitmap().test(r), r == 6 || r == 7) << r;
  EXPECT_EQ(engine_->counters().bytes_fell_through.load(), length);
  EXPECT_EQ(engine_->counters().bytes_written_through.load(), 2 * kRegion);
  EXPECT_EQ(engine_->counters().bytes_copied.load(), 0u);
  // Durable by the commit rule: the flush syncs the destination, then commits regions 6 and 7.
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_GE(dest_->syncs.load(), 1);
  crash_and_reopen();
  EXPECT_TRUE(engine_->bitmap().test(6) && engine_->bitmap().test(7));
  EXPECT_TRUE(dest_bytes(dir_.file("dest.img"), 6 * kRegion, 2 * kRegion) ==
              model(6 * kRegion, 2 * kRegion));
  const int reads = source_->reads.load();
  EXPECT_TRUE(read(6 * kRegion, 2 * kRegion) == model(6 * kRegion, 2 * kRegion));
  EXPECT_EQ(source_->reads.load(), reads) << "regions written through still read the source";
  expect_image_matches_model();
}

TEST_F(WriteThrough, OffByDefault) {
  EXPECT_TRUE(read(3 * kRegion, 2 * kRegion) == model(3 * kRegion, 2 * kRegion));
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u);
  EXPECT_EQ(dest_->writes.load(), 0);
}

// The last region is shorter than the others: a read to the end of the image holds it whole.
TEST_F(WriteThrough, TheShortLastRegionIsWrittenThroughByAReadToTheEnd) {
  engine_->set_write_through(true);
  EXPECT_TRUE(read(15 * kRegion, kRegion + 1000) == model(15 * kRegion, kRegion + 1000));
  EXPECT_TRUE(engine_->bitmap().test(15) && engine_->bitmap().test(16));
  expect_image_matches_model();
}

// A failed destination write fails neither the read nor the clone: the region stays invalid.
TEST_F(WriteThrough, AFailedWriteLeavesTheRegionInvalidAndTheReadServed) {
  engine_->set_write_through(true);
  dest_->fail_write = EIO;
  EXPECT_TRUE(read(2 * kRegion, kRegion) == model(2 * kRegion, kRegion));
  EXPECT_FALSE(engine_->bitmap().test(2));
  dest_->fail_write = 0;
  EXPECT_EQ(engine_->status().mode, MetadataMode::kReadWrite);
  expect_image_matches_model();
}

// Read-only metadata: no region may become valid, so nothing is written into the destination.
TEST_F(WriteThrough, ReadOnlyModeWritesNothing) {
  engine_->set_write_through(true);
  ASSERT_TRUE(engine_->write(0, random_bytes(kRegion, 2)).is_ok());
  store_->fail_commit = ENOSPC;
  ASSERT_FALSE(engine_->flush().is_ok());
  ASSERT_EQ(engine_->status().mode, MetadataMode::kReadOnly);
  const int writes = dest_->writes.load();
  EXPECT_TRUE(read(4 * kRegion, 2 * kRegion) == model(4 * kRegion, 2 * kRegion));
  EXPECT_EQ(dest_->writes.load(), writes);
  EXPECT_FALSE(engine_->bitmap().test(4) || engine_->bitmap().test(5));
}

}  // namespace
}  // namespace clonefs::testing
