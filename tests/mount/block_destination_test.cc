// A block device as the destination (a loop device over a zeroed file): its punch must accept
// ranges that are not aligned to the logical block size — a partial discard, and the last region
// of a source whose size is not a multiple of 512 — and still read zeros there afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "engine/clone.h"
#include "io/posix_devices.h"
#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kKiB = 1024, kMiB = 1024 * kKiB;

std::string loop_environment_problem() {
  if (::geteuid() != 0) return "not running as root (loop devices need it)";
  if (run("command -v losetup && losetup -f").exit_code != 0)
    return "no free loop device (losetup -f failed)";
  return "";
}

class BlockDestination : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string problem = loop_environment_problem(); !problem.empty()) {
      if (running_in_ci()) FAIL() << "CI must run loop-device tests: " << problem;
      GTEST_SKIP() << "needs a loop device: " << problem;
    }
    // Zeroed (sparse) backing file: no filesystem signature for create to worry about.
    int fd = ::open(dir_.file("backing.img").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 2 * kMiB), 0);
    ::close(fd);
    loop_ = std::make_unique<LoopDevice>(dir_.file("backing.img"));
    ASSERT_TRUE(loop_->ok()) << "losetup of " << dir_.file("backing.img") << " failed";
  }

  std::vector<std::byte> read_device(uint64_t offset, uint64_t length) {
    std::vector<std::byte> out(length);
    int fd = ::open(loop_->device().c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << loop_->device();
    EXPECT_EQ(::pread(fd, out.data(), length, static_cast<off_t>(offset)),
              static_cast<ssize_t>(length));
    ::close(fd);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<LoopDevice> loop_;  // after dir_: detached before the backing file goes
};

TEST_F(BlockDestination, UnalignedPunchesReadZerosAndKeepTheirNeighbours) {
  auto dest = open_destination(loop_->device(), std::nullopt);
  ASSERT_TRUE(dest.is_ok()) << dest.status().message();
  std::vector<std::byte> model = random_bytes(64 * kKiB, 8);
  ASSERT_TRUE((*dest)->write_at(0, model).is_ok());
  ASSERT_TRUE((*dest)->sync().is_ok());
  // Inside one 512-byte block; across blocks with unaligned ends; aligned; one byte at the end.
  const std::pair<uint64_t, uint64_t> punches[] = {
      {100, 200}, {1000, 3000}, {5000, 20000}, {32768, 8192}, {64 * kKiB - 1, 1}};
  for (auto [offset, length] : punches) {
    Status st = (*dest)->punch(offset, length);
    ASSERT_TRUE(st.is_ok()) << "punch " << offset << "+" << length << ": " << st.message();
    std::fill_n(model.begin() + static_cast<long>(offset), length, std::byte{0});
  }
  ASSERT_TRUE((*dest)->sync().is_ok());
  std::vector<std::byte> through_engine_view(model.size());
  ASSERT_TRUE((*dest)->read_at(0, through_engine_view).is_ok());
  EXPECT_TRUE(through_engine_view == model) << "the destination's own reads differ";
  dest->reset();
  EXPECT_TRUE(read_device(0, model.size()) == model)
      << "a fresh open of the device reads other bytes";
}

// 1 MiB + 777 bytes: the last region is 777 bytes, its punch or copy ends mid-block.
class OddSizedSource : public BlockDestination, public ::testing::WithParamInterface<bool> {};

TEST_P(OddSizedSource, HydratesCompletelyAndMatchesTheSourceByteForByte) {
  const bool last_region_has_data = GetParam();
  constexpr uint64_t kSize = kMiB + 777, kRegion = 4 * kKiB;
  std::vector<std::byte> source = random_bytes(kSize, 77);
  if (!last_region_has_data) std::fill(source.begin() + kMiB, source.end(), std::byte{0});
  std::fill_n(source.begin() + 40 * kRegion, 3 * kRegion, std::byte{0});  // zero regions mid-image
  write_file(dir_.file("source.img"), source);
  Status created = create_clone(
      {dir_.file("source.img"), loop_->device(), dir_.file("meta.db"), kRegion, false});
  ASSERT_TRUE(created.is_ok()) << created.message();
  auto clone = Clone::open(dir_.file("meta.db"), {});
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  CloneEngine& engine = (*clone)->engine();
  for (uint64_t r = 0; r < engine.geometry().region_count(); r += 16) {
    auto step = engine.hydrate(r, 16);
    ASSERT_TRUE(step.is_ok()) << "hydrating regions from " << r << ": " << step.status().message();
  }
  EXPECT_TRUE(engine.bitmap().all_valid());
  // A partial discard of a valid region: an unaligned punch of the block device.
  Status discarded = engine.discard(5000, 100);
  ASSERT_TRUE(discarded.is_ok()) << discarded.message();
  std::fill_n(source.begin() + 5000, 100, std::byte{0});
  ASSERT_TRUE(engine.close().is_ok());
  clone->reset();
  EXPECT_TRUE(read_device(0, kSize) == source)
      << "the destination is not the source over the image size";
}

INSTANTIATE_TEST_SUITE_P(LastRegion, OddSizedSource, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "WithData" : "AllZeros"; });

}  // namespace
}  // namespace clonefs::testing
