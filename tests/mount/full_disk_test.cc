// Real full disks (small tmpfs mounts) under the destination and under the metadata: the error
// reaches the caller, the clone ends in the mode CONTRACT.md names, nothing acknowledged is lost
// and the metadata never claims a region that is not durable.
#include <gtest/gtest.h>

#include "engine/clone.h"
#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion = 64 << 10;

// A tmpfs of `size` at `path`, unmounted at scope end.
class SmallDisk {
 public:
  SmallDisk(std::string path, const std::string& size) : path_(std::move(path)) {
    run("mkdir -p " + shell_quote(path_));
    mounted_ = run("mount -t tmpfs -o size=" + size + " clonefs-test " + shell_quote(path_)).exit_code == 0;
  }
  ~SmallDisk() {
    if (mounted_) run("umount " + shell_quote(path_));
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool ok() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override { CLONEFS_REQUIRE_MOUNT_ENVIRONMENT(); }
  TempDir dir_;
};

TEST_F(FullDisk, DestinationRunsOutOfSpace) {
  SmallDisk disk(dir_.file("small"), "4m");
  ASSERT_TRUE(disk.ok());
  write_file(dir_.file("source.img"), random_bytes(16 * kMiB, 1));
  ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("small/dest.img"), dir_.file("meta.db"), kRegion, false}).is_ok());
  std::vector<std::vector<std::byte>> written;
  {
    auto clone = Clone::open(dir_.file("meta.db"), {.engine = {.commit_period = std::chrono::milliseconds(0)}});
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    CloneEngine& engine = (*clone)->engine();
    Status st;
    for (uint64_t r = 0; r < 256 && st.is_ok(); ++r) {
      auto bytes = random_bytes(kRegion, 100 + r);
      st = engine.write(r * kRegion, bytes);
      if (st.is_ok()) written.push_back(bytes);
    }
    EXPECT_EQ(st.code(), ENOSPC) << st.message();
    EXPECT_NE(st.message().find("dest.img"), std::string::npos) << st.message();
    EXPECT_GT(written.size(), 10u);
    EXPECT_LE(written.size(), 64u);  // 4 MiB holds 64 regions of 64 KiB at most
    EXPECT_EQ(engine.bitmap().valid_count(), written.size());
    ASSERT_TRUE(engine.flush().is_ok());
  }
  auto clone = Clone::open(dir_.file("meta.db"), {});
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  CloneEngine& engine = (*clone)->engine();
  EXPECT_EQ(engine.bitmap().valid_count(), written.size());
  auto source = read_file(dir_.file("source.img"));
  for (uint64_t r = 0; r < written.size() + 1; ++r) {
    std::vector<std::byte> got(kRegion);
    ASSERT_TRUE(engine.read(r * kRegion, got).is_ok());
    if (r < written.size()) {
      EXPECT_TRUE(got == written[r]) << "acknowledged region " << r << " lost";
    } else {
      EXPECT_TRUE(std::equal(got.begin(), got.end(), source.begin() + static_cast<long>(r * kRegion)))
          << "the region whose write failed must read the source";
    }
  }
}

TEST_F(FullDisk, MetadataCannotCommit) {
  SmallDisk disk(dir_.file("small"), "256k");
  ASSERT_TRUE(disk.ok());
  write_file(dir_.file("source.img"), random_bytes(64 * kMiB, 2));
  // 4 KiB regions: 16,384 regions, so a commit of many scattered ones needs many WAL pages.
  ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("dest.img"), dir_.file("small/meta.db"), 4096, false}).is_ok());
  auto clone = Clone::open(dir_.file("small/meta.db"), {.engine = {.commit_period = std::chrono::milliseconds(0)}});
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  // Then leave no room next to the metadata (opened first: the -shm needs its space).
  run("head -c 10M /dev/zero > " + shell_quote(dir_.file("small/filler")));
  CloneEngine& engine = (*clone)->engine();
  auto bytes = random_bytes(4096, 3);
  Status st;
  for (uint64_t r = 0; r < 16384 && st.is_ok(); r += 5) {
    st = engine.write(r * 4096, bytes);
    if (r % 1000 == 0 && st.is_ok()) st = engine.flush();
  }
  if (st.is_ok()) st = engine.flush();
  EXPECT_EQ(st.code(), ENOSPC) << st.message();
  EngineStatus status = engine.status();
  EXPECT_EQ(status.mode, MetadataMode::kReadOnly) << status.mode_reason;
  EXPECT_NE(status.mode_reason.find("meta.db"), std::string::npos) << status.mode_reason;
  // Reads keep working; new regions cannot become valid.
  std::vector<std::byte> got(4096);
  EXPECT_TRUE(engine.read(0, got).is_ok());
  EXPECT_EQ(engine.write(1 * 4096, bytes).code(), EIO);
}

}  // namespace
}  // namespace clonefs::testing
