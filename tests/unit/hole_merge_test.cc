// A partial write into an invalid region where the source holds only a hole reads nothing and
// writes only its own bytes: the destination is punched there and the write laid on the hole.
// What a filesystem on a fresh clone does for every new file in its free space.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/clone.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kRegion = 16 * 1024;
constexpr uint64_t kSize = 4 * kRegion;  // region 0 data, regions 1-3 holes

class HoleMerge : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string source = dir_.file("source.img");
    write_file(source, random_bytes(kRegion, 1));
    ASSERT_EQ(::truncate(source.c_str(), static_cast<off_t>(kSize)), 0);
    ASSERT_TRUE(create_clone({source, dest(), dir_.file("meta.db"), kRegion, false}).is_ok());
  }
  void open() {
    OpenOptions options;
    options.engine.commit_period = std::chrono::milliseconds(0);
    auto clone = Clone::open(dir_.file("meta.db"), options);
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    clone_ = std::move(*clone);
  }
  std::string dest() const { return dir_.file("dest.img"); }
  CloneEngine& engine() { return clone_->engine(); }
  uint64_t dest_allocated() const {
    struct stat st {};
    EXPECT_EQ(::stat(dest().c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }
  std::vector<std::byte> region(uint64_t r) {
    std::vector<std::byte> out(kRegion);
    EXPECT_TRUE(engine().read(r * kRegion, out).is_ok());
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Clone> clone_;
};

TEST_F(HoleMerge, AWriteIntoAHoleRegionWritesOnlyItsBytes) {
  open();
  const auto block = random_bytes(4096, 2);
  ASSERT_TRUE(engine().write(kRegion + 4096, block).is_ok());
  EXPECT_EQ(dest_allocated(), 4096u) << "the hole's zeros were written too";
  EXPECT_EQ(engine().counters().regions_copied.load(), 0u);
  EXPECT_EQ(engine().counters().regions_skipped.load(), 1u);
  EXPECT_TRUE(engine().bitmap().test(1));
  std::vector<std::byte> expected(kRegion);
  std::copy(block.begin(), block.end(), expected.begin() + 4096);
  EXPECT_TRUE(region(1) == expected);
  ASSERT_TRUE(engine().flush().is_ok());
}

// An invalid region of the destination may hold a write from before a crash that was never
// committed: the rest of the region must read the source's zeros, not that.
TEST_F(HoleMerge, WhatAnUncommittedWriteLeftInTheRegionReadsAsTheSourcesZeros) {
  write_file(dir_.file("stale"), random_bytes(kRegion, 3));
  int fd = ::open(dest().c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const auto stale = read_file(dir_.file("stale"));
  ASSERT_EQ(::pwrite(fd, stale.data(), kRegion, 2 * kRegion), static_cast<ssize_t>(kRegion));
  ::close(fd);
  open();
  const auto block = random_bytes(100, 4);
  ASSERT_TRUE(engine().write(2 * kRegion + 8000, block).is_ok());
  std::vector<std::byte> expected(kRegion);
  std::copy(block.begin(), block.end(), expected.begin() + 8000);
  EXPECT_TRUE(region(2) == expected);
}

TEST_F(HoleMerge, AWriteIntoARegionWithSourceDataMergesIt) {
  open();
  const auto before = region(0);
  const auto block = random_bytes(4096, 5);
  ASSERT_TRUE(engine().write(4096, block).is_ok());
  EXPECT_EQ(engine().counters().regions_copied.load(), 1u);
  auto expected = before;
  std::copy(block.begin(), block.end(), expected.begin() + 4096);
  EXPECT_TRUE(region(0) == expected);
}

}  // namespace
}  // namespace clonefs::testing
