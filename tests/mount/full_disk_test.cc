// Real full disks (small tmpfs mounts) under the destination and under the metadata: the error
// reaches the caller, the clone ends in the mode docs/SEMANTICS.md names, nothing acknowledged is
// lost and the metadata never claims a region that is not durable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "engine/clone.h"
#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion = 64 << 10;

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override { CLONEFS_REQUIRE_MOUNT_ENVIRONMENT(); }
  TempDir dir_;
};

TEST_F(FullDisk, DestinationRunsOutOfSpace) {
  SmallDisk disk(dir_.file("small"), "4m");
  ASSERT_TRUE(disk.ok());
  write_file(dir_.file("source.img"), random_bytes(16 * kMiB, 1));
  ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("small/dest.img"),
                            dir_.file("meta.db"), kRegion, false})
                  .is_ok());
  std::vector<std::vector<std::byte>> written;
  {
    auto clone = Clone::open(dir_.file("meta.db"),
                             {.engine = {.commit_period = std::chrono::milliseconds(0)}});
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
      EXPECT_TRUE(
          std::equal(got.begin(), got.end(), source.begin() + static_cast<long>(r * kRegion)))
          << "the region whose write failed must read the source";
    }
  }
}

TEST_F(FullDisk, MetadataCannotCommit) {
  SmallDisk disk(dir_.file("small"), "256k");
  ASSERT_TRUE(disk.ok());
  write_file(dir_.file("source.img"), random_bytes(64 * kMiB, 2));
  // 4 KiB regions: 16,384 regions, so a commit of many scattered ones needs many WAL pages.
  ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("dest.img"),
                            dir_.file("small/meta.db"), 4096, false})
                  .is_ok());
  auto clone = Clone::open(dir_.file("small/meta.db"),
                           {.engine = {.commit_period = std::chrono::milliseconds(0)}});
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

// The hole found by trying it: a write into a never-touched region, the 1 s periodic commit
// fails (metadata disk full) and rolls the region back; the fsync after it must not return 0,
// and `clonefs unmount` must say so with a non-zero exit.
TEST_F(FullDisk, AFailedPeriodicCommitFailsTheNextFsyncAndTheUnmount) {
  SmallDisk disk(dir_.file("small"), "256k");
  ASSERT_TRUE(disk.ok());
  write_file(dir_.file("source.img"), random_bytes(4 * kMiB, 4));
  std::string clonefs = shell_quote(clonefs_binary());
  CommandResult created = run(clonefs + " create --source " + shell_quote(dir_.file("source.img")) +
                              " --dest " + shell_quote(dir_.file("dest.img")) + " --metadata " +
                              shell_quote(dir_.file("small/meta.db")) + " --region-size 4K");
  ASSERT_EQ(created.exit_code, 0) << created.output;
  MountedImage mounted(dir_.file("small/meta.db"), dir_.file("image"), "--no-hydration");
  ASSERT_TRUE(mounted.ok()) << mounted.result().output;
  run("head -c 10M /dev/zero > " + shell_quote(dir_.file("small/filler")));

  int fd = ::open(dir_.file("image").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string mode;
  // Each write makes new regions valid; the periodic commit that tries to record them fails.
  for (int i = 0; i < 40 && mode != "ro"; ++i) {
    auto bytes = random_bytes(4096, 10 + static_cast<uint64_t>(i));
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(i) * 5 * 4096), 4096);
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    CommandResult status = run(clonefs + " status --json " + shell_quote(dir_.file("image")));
    auto pos = status.output.find("\"metadata_mode\": \"");
    ASSERT_NE(pos, std::string::npos) << status.output;
    mode = status.output.substr(pos + 18, 2);
  }
  ASSERT_EQ(mode, "ro") << "the periodic commit never failed";
  run("rm -f " + shell_quote(dir_.file("small/filler")));  // room again: the failure must stay
  errno = 0;
  EXPECT_EQ(::fsync(fd), -1) << "fsync acknowledged writes the failed commit rolled back";
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  CommandResult unmounted = mounted.unmount();
  EXPECT_NE(unmounted.exit_code, 0) << unmounted.output;
  EXPECT_NE(unmounted.output.find("commit failed"), std::string::npos) << unmounted.output;
  EXPECT_NE(unmounted.output.find("may be lost"), std::string::npos) << unmounted.output;
}

}  // namespace
}  // namespace clonefs::testing
