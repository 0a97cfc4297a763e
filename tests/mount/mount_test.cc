// Issue #3's scenarios through a real FUSE mount, loop devices and ext4.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::vector<std::byte> pread_file(const std::string& path, uint64_t offset, size_t length) {
  std::vector<std::byte> out(length);
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(::pread(fd, out.data(), length, static_cast<off_t>(offset)),
            static_cast<ssize_t>(length));
  ::close(fd);
  return out;
}

TEST_F(MountTest, ImageReadsAsTheSourceAndWritesNeverReachTheSource) {
  write_file(source(), random_bytes(32 * kMiB, 11));
  const std::string source_digest = file_digest(source());
  create("--region-size 64K");
  mount("--no-hydration");
  EXPECT_EQ(run("cmp " + shell_quote(image()) + " " + shell_quote(source())).exit_code, 0);

  struct Pattern {
    uint64_t offset;
    std::vector<std::byte> bytes;
  };
  std::vector<Pattern> patterns = {{1, random_bytes(100, 1)},
                                   {65536 - 7, random_bytes(20, 2)},
                                   {3 * kMiB + 12345, random_bytes(300000, 3)},
                                   {32 * kMiB - 5, random_bytes(5, 4)}};
  int fd = ::open(image().c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (const auto& p : patterns) {
    ASSERT_EQ(::pwrite(fd, p.bytes.data(), p.bytes.size(), static_cast<off_t>(p.offset)),
              static_cast<ssize_t>(p.bytes.size()));
  }
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
  for (const auto& p : patterns)
    EXPECT_TRUE(pread_file(image(), p.offset, p.bytes.size()) == p.bytes);
  EXPECT_EQ(file_digest(source()), source_digest);

  unmount();
  mount("--no-hydration");
  for (const auto& p : patterns)
    EXPECT_TRUE(pread_file(image(), p.offset, p.bytes.size()) == p.bytes) << p.offset;
  EXPECT_EQ(file_digest(source()), source_digest);
}

TEST_F(MountTest, Ext4OnALoopDeviceSurvivesFstrimAndChecksClean) {
  // dm-clone's filesystem scenario: files with known checksums, fstrim, new files, fsck.
  run("mkdir -p " + shell_quote(dir_.file("tree/sub")));
  write_file(dir_.file("tree/a.bin"), random_bytes(3 * kMiB, 5));
  write_file(dir_.file("tree/sub/b.bin"), random_bytes(700000, 6));
  ASSERT_EQ(run("cd " + shell_quote(dir_.file("tree")) + " && sha256sum a.bin sub/b.bin > ../sums")
                .exit_code,
            0);
  CommandResult mkfs = run("mkfs.ext4 -q -F -d " + shell_quote(dir_.file("tree")) + " " +
                           shell_quote(source()) + " 64M");
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
  const std::string source_digest = file_digest(source());
  create();
  mount();
  {
    LoopDevice loop(image());
    ASSERT_TRUE(loop.ok());
    FilesystemMount fs(loop.device(), dir_.file("mnt"));
    ASSERT_TRUE(fs.ok());
    const std::string check =
        "cd " + shell_quote(dir_.file("mnt")) + " && sha256sum -c --quiet ../sums";
    EXPECT_EQ(run(check).exit_code, 0);
    CommandResult trim = run("fstrim -v " + shell_quote(dir_.file("mnt")));
    EXPECT_EQ(trim.exit_code, 0) << trim.output;
    EXPECT_EQ(run("echo 3 > /proc/sys/vm/drop_caches").exit_code, 0);
    EXPECT_EQ(run(check).exit_code, 0) << "fstrim changed file contents";
    write_file(dir_.file("mnt/new.bin"), random_bytes(2 * kMiB, 7));
    EXPECT_EQ(run("sync").exit_code, 0);
    fs.unmount();
    CommandResult fsck = run("e2fsck -fn " + shell_quote(loop.device()));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
  }
  EXPECT_EQ(file_digest(source()), source_digest);
}

// The loop device buffered or --direct-io=on; clonefs with or without --writeback-cache (the
// cache only sees a buffered loop device's writes).
struct LoopCase {
  bool direct_io;
  bool writeback_cache;
};

class FioThroughLoop : public MountTest, public ::testing::WithParamInterface<LoopCase> {};

TEST_P(FioThroughLoop, VerifiedRandomWritesOfMixedSizes) {
  if (run("command -v fio").exit_code != 0) {
    if (running_in_ci()) FAIL() << "fio is not installed";
    GTEST_SKIP() << "fio is not installed";
  }
  write_file(source(), random_bytes(64 * kMiB, 21));
  create();
  mount(GetParam().writeback_cache ? "--writeback-cache" : "");
  LoopDevice loop(image(), GetParam().direct_io ? "--direct-io=on" : "");
  ASSERT_TRUE(loop.ok());
  CommandResult fio =
      run("fio --name=verify --filename=" + loop.device() +
          " --rw=randwrite --bsrange=512-256k --size=48M --io_size=32M --ioengine=psync" +
          " --direct=1 --verify=crc32c --verify_fatal=1 --do_verify=1 --randseed=7 "
          "--output-format=terse");
  EXPECT_EQ(fio.exit_code, 0) << fio.output;
}

INSTANTIATE_TEST_SUITE_P(DirectIo, FioThroughLoop,
                         ::testing::Values(LoopCase{false, false}, LoopCase{true, false},
                                           LoopCase{false, true}),
                         [](const auto& info) {
                           return std::string(info.param.direct_io ? "direct_io_on"
                                                                   : "direct_io_off") +
                                  (info.param.writeback_cache ? "_writeback_cache" : "");
                         });

}  // namespace
}  // namespace clonefs::testing

namespace clonefs::testing {
namespace {

// With --writeback-cache too: the kernel then writes the page back before the fsync it sends.
class OSyncWrites : public MountTest, public ::testing::WithParamInterface<bool> {};

TEST_P(OSyncWrites, AreDurableAndCostOneFlushEach) {
  write_file(source(), random_bytes(4 * kMiB, 71));
  create("--region-size 64K");
  mount(GetParam() ? "--no-hydration --writeback-cache" : "--no-hydration");
  std::vector<std::vector<std::byte>> written;
  for (int flags : {O_WRONLY | O_DSYNC, O_WRONLY | O_SYNC | O_DIRECT}) {
    int fd = ::open(image().c_str(), flags);
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 4; ++i) {
      void* raw = nullptr;
      ASSERT_EQ(::posix_memalign(&raw, 4096, 65536), 0);  // O_DIRECT wants aligned buffers
      auto bytes = random_bytes(65536, written.size());
      std::memcpy(raw, bytes.data(), bytes.size());
      ASSERT_EQ(::pwrite(fd, raw, 65536, static_cast<off_t>(written.size() * 65536)), 65536);
      std::free(raw);
      written.push_back(bytes);
    }
    ::close(fd);
  }
  CommandResult status = run(clonefs("status --json " + shell_quote(image())));
  EXPECT_NE(status.output.find("\"destination_syncs\": 8,"), std::string::npos) << status.output;
  // Durable before write() returned: a SIGKILL right after loses nothing.
  mounted_->kill_daemon();
  mounted_.reset();
  mount("--no-hydration");
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_TRUE(pread_file(image(), i * 65536, 65536) == written[i])
        << "O_SYNC write " << i << " lost";
  }
}

INSTANTIATE_TEST_SUITE_P(Cache, OSyncWrites, ::testing::Bool(), [](const auto& info) {
  return info.param ? "writeback_cache" : "no_writeback_cache";
});

}  // namespace
}  // namespace clonefs::testing
