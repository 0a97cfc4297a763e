// Memory stays bounded whatever the geometry: no copy moves more than kMaxCopyBytes in one read
// or write (so no buffer is larger), and an allocation failure in a hydration worker is a failed
// batch, retried later, never the end of the daemon.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "engine/clone.h"
#include "engine/hydrator.h"
#include "support/io_probe_devices.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::vector<std::byte> read_range(const std::string& path, uint64_t offset, uint64_t length) {
  std::vector<std::byte> out(length);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(::pread(fd, out.data(), length, static_cast<off_t>(offset)),
            static_cast<ssize_t>(length))
      << path;
  ::close(fd);
  return out;
}

void write_range(const std::string& path, uint64_t offset, const std::vector<std::byte>& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

class CopyBounds : public ::testing::Test {
 protected:
  // Opens a clone of the source already written at source(), through probes.
  void open_clone(uint64_t region_size) {
    ASSERT_TRUE(create_clone({source(), dest(), dir_.file("meta.db"), region_size, false}).is_ok());
    auto clone = open_probed(dir_.file("meta.db"), probes_);
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    clone_ = std::move(*clone);
  }
  CloneEngine& engine() { return clone_->engine(); }
  std::string source() const { return dir_.file("source.img"); }
  std::string dest() const { return dir_.file("dest.img"); }

  // Compares the destination file with `expected(offset, length)` over [begin, end), a piece at a
  // time so a large image is never held whole.
  template <typename Expected>
  void expect_destination(uint64_t begin, uint64_t end, Expected expected) {
    for (uint64_t pos = begin; pos < end; pos += 8 * kMiB) {
      uint64_t n = std::min(8 * kMiB, end - pos);
      ASSERT_TRUE(read_range(dest(), pos, n) == expected(pos, n))
          << "destination differs in [" << pos << ", " << pos + n << ")";
    }
  }

  TempDir dir_;
  Probes probes_;
  std::unique_ptr<Clone> clone_;
};

// Three and a bit 64 MiB regions, sparse: data islands in regions 0, 1 and 3, region 2 all holes,
// a short last region of an odd size.
class HugeRegions : public CopyBounds {
 protected:
  static constexpr uint64_t kRegion = 64 * kMiB;
  static constexpr uint64_t kSize = 3 * kRegion + 5 * kMiB + 333;

  void SetUp() override {
    int fd = ::open(source().c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kSize)), 0);
    ::close(fd);
    for (uint64_t at : {uint64_t{0}, 10 * kMiB + 17, kRegion + 3 * kMiB, 3 * kRegion + kMiB}) {
      write_range(source(), at, random_bytes(kMiB, at));
    }
    open_clone(kRegion);
  }
};

TEST_F(HugeRegions, HydrationReadsAndWritesAtMostTheCapAtOnce) {
  ASSERT_TRUE(clone_);
  Hydrator hydrator(engine(), {.threshold = 64, .batch = 16});
  ASSERT_TRUE(hydrator.wait_complete(std::chrono::seconds(60)));
  hydrator.stop();
  ASSERT_TRUE(engine().flush().is_ok());
  EXPECT_LE(probes_.source->largest_read.load(), kMaxCopyBytes);
  EXPECT_LE(probes_.destination->largest_write.load(), kMaxCopyBytes);
  EXPECT_EQ(engine().counters().regions_skipped.load(), 1u) << "region 2 is all zeros";
  EXPECT_EQ(engine().counters().regions_copied.load(), 3u);
  expect_destination(0, kSize,
                     [&](uint64_t pos, uint64_t n) { return read_range(source(), pos, n); });
}

TEST_F(HugeRegions, PartialWriteAndDiscardIntoInvalidRegionsCopyThemInPieces) {
  ASSERT_TRUE(clone_);
  auto bytes = random_bytes(100, 5);
  const uint64_t at = kRegion + 12345;
  ASSERT_TRUE(engine().write(at, bytes).is_ok());
  const uint64_t zeroed = 3 * kRegion + kMiB + 100;  // inside the short last region's data
  ASSERT_TRUE(engine().discard(zeroed, 50).is_ok());
  EXPECT_TRUE(engine().bitmap().test(1));
  EXPECT_TRUE(engine().bitmap().test(3));
  EXPECT_LE(probes_.source->largest_read.load(), kMaxCopyBytes);
  EXPECT_LE(probes_.destination->largest_write.load(), kMaxCopyBytes);
  ASSERT_TRUE(engine().flush().is_ok());
  auto expected = [&](uint64_t pos, uint64_t n) {
    auto out = read_range(source(), pos, n);
    for (uint64_t i = 0; i < n; ++i) {
      if (pos + i >= at && pos + i < at + bytes.size()) out[i] = bytes[pos + i - at];
      if (pos + i >= zeroed && pos + i < zeroed + 50) out[i] = std::byte{0};
    }
    return out;
  };
  expect_destination(kRegion, 2 * kRegion, expected);
  expect_destination(3 * kRegion, kSize, expected);
}

// A batch of huge regions from a slow source is many pieces: stop() must not wait for them all
// (here 50 pieces of 150 ms, 7.5 s for the batch).
TEST_F(HugeRegions, StopDoesNotWaitForABatchOfHugeRegionsToBeCopied) {
  ASSERT_TRUE(clone_);
  probes_.source->read_delay_ms = 150;
  probes_.source->reads = 0;  // opening read the fingerprint through the probe
  Hydrator hydrator(engine(), {.threshold = 16, .batch = 16}, 1);
  // Two pieces begun: the batch is being copied (the first could be a lone region's).
  for (int i = 0; i < 300 && probes_.source->reads.load() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(probes_.source->reads.load(), 2) << "the copy never started";
  auto asked = std::chrono::steady_clock::now();
  hydrator.stop();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - asked);
  EXPECT_LT(took.count(), 2000) << "stop() took " << took.count() << " ms";
  EXPECT_EQ(engine().bitmap().valid_count(), 0u) << "a cancelled batch stays invalid";
  EXPECT_EQ(hydrator.status().failed_regions, 0u) << "cancelled is not failed";
  EXPECT_EQ(engine().status().regions_in_flight, 0u);
}

using SmallRegions = CopyBounds;

TEST_F(SmallRegions, AWorkerWhoseCopyThrowsBadAllocLivesOnAndTheRegionIsHydratedLater) {
  constexpr uint64_t kRegion = 4096, kSize = 32 * kRegion;
  write_file(source(), random_bytes(kSize, 9));
  open_clone(kRegion);
  ASSERT_TRUE(clone_);
  probes_.source->throw_bad_alloc = 1;
  Hydrator hydrator(engine(), {.threshold = 8, .batch = 4}, 2);
  EXPECT_TRUE(hydrator.wait_complete(std::chrono::seconds(10)));
  EXPECT_EQ(probes_.source->thrown.load(), 1);
  EXPECT_EQ(hydrator.status().failed_regions, 0u)
      << "an allocation failure is not the source's fault";
  hydrator.stop();
  ASSERT_TRUE(engine().flush().is_ok());
  EXPECT_TRUE(read_file(dest()) == read_file(source()));
}

}  // namespace
}  // namespace clonefs::testing
