// mount --writeback-cache: the kernel keeps the pages written to IMAGE and sends them back in
// batches. What must hold all the same: IMAGE has the source's size (the kernel keeps the size
// itself then), an fsync returns only once everything it acknowledges is committed, with one
// destination flush, and pages still dirty in the kernel when a serving process dies reach its
// successor. The loop-device and kill tests run with it too (mount_test.cc, restart_test.cc,
// ext4_kill_test.cc).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "mount/kill_target.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion = 64 * 1024;
const std::string kWriteback = "--no-hydration --writeback-cache";

std::vector<std::byte> pread_at(const std::string& path, uint64_t offset, size_t length) {
  std::vector<std::byte> bytes(length);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::pread(fd, bytes.data(), length, static_cast<off_t>(offset)) !=
                    static_cast<ssize_t>(length)) {
    bytes.clear();
  }
  if (fd >= 0) ::close(fd);
  return bytes;
}

// IMAGE's size as the kernel shows it: -1 if stat fails.
int64_t image_size_now(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

// The kernel grew IMAGE for a write past the end before any of it reached the daemon; once its
// write-back is refused the daemon has the size put back. That truncate waits for the fsync
// reporting the refusal to end (it holds the inode's lock), so it lands a moment later: waited
// for here, up to 10 s. Returns the size last seen.
int64_t size_once_settled(const std::string& path, int64_t expected) {
  int64_t size = image_size_now(path);
  for (int i = 0; i < 1000 && size != expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    size = image_size_now(path);
  }
  return size;
}

// What a read at `offset` returns: the byte count, or -1.
ssize_t read_count_at(const std::string& path, uint64_t offset, size_t length) {
  std::vector<std::byte> bytes(length);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  const ssize_t n = ::pread(fd, bytes.data(), length, static_cast<off_t>(offset));
  ::close(fd);
  return n;
}

class WritebackCacheTest : public MountTest {
 protected:
  // 4 KiB blocks in three regions nothing has touched yet.
  const std::vector<uint64_t> offsets_ = {3 * kRegion + 8192, 40 * kRegion, 200 * kRegion + 4096};
  const std::vector<std::byte> block_ = random_bytes(4096, 91);

  void create_clone() {
    write_file(source(), random_bytes(16 * kMiB, 90));
    create("--region-size 64K");
  }
  // Creates the clone, mounts it with `flags` and opens IMAGE read-write: the descriptor, or -1.
  int open_mounted(const std::string& flags) {
    create_clone();
    mount(flags);
    int fd = ::open(image().c_str(), O_RDWR);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    return fd;
  }
  // Buffered writes of block_ at offsets_, on `fd`.
  void write_blocks(int fd) {
    for (uint64_t offset : offsets_) {
      ASSERT_EQ(::pwrite(fd, block_.data(), block_.size(), static_cast<off_t>(offset)), 4096)
          << std::strerror(errno);
    }
  }
  // A write of 8 KiB straddling the end, with the cache and `flags` (see the tests below).
  void straddle_the_end(const std::string& flags) {
    const int fd = open_mounted(flags);
    ASSERT_GE(fd, 0);
    const auto bytes = random_bytes(8192, 93);
    const off_t at = static_cast<off_t>(16 * kMiB - 4096);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), at), 8192) << std::strerror(errno);
    EXPECT_EQ(::fsync(fd), -1) << "the fsync after a write straddling the end succeeded";
    EXPECT_EQ(errno, EFBIG) << std::strerror(errno);
    EXPECT_EQ(size_once_settled(image(), 16 * kMiB), static_cast<int64_t>(16 * kMiB))
        << "the kernel kept the size it grew for the write";
    EXPECT_EQ(read_count_at(image(), 16 * kMiB, 4096), 0) << "a read past the end returned bytes";
    ::close(fd);
    unmount();
    mount("--no-hydration");
    EXPECT_EQ(image_size_now(image()), static_cast<int64_t>(16 * kMiB));
    const std::vector<std::byte> inside(bytes.begin(), bytes.begin() + 4096);
    EXPECT_TRUE(pread_at(image(), static_cast<uint64_t>(at), 4096) == inside)
        << "the part inside the image was not written";
    unmount();
  }
  // After a remount without the cache: every block reads back.
  void expect_blocks_kept() {
    mount("--no-hydration");
    for (uint64_t offset : offsets_) {
      EXPECT_TRUE(pread_at(image(), offset, 4096) == block_) << "fsynced write at " << offset;
    }
  }
};

TEST_F(WritebackCacheTest, ImageHasItsSizeAndAnFsyncCommitsTheCachedWritesWithOneFlush) {
  create_clone();
  mount(kWriteback);
  // The kernel starts a FUSE mount's file at size 0 and, with the cache, never takes the size
  // from getattr: the daemon pins it before the mount is ready.
  struct stat st {};
  ASSERT_EQ(::stat(image().c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 16 * kMiB);
  {
    LoopDevice loop(image());
    ASSERT_TRUE(loop.ok());
    CommandResult size = run("blockdev --getsize64 " + shell_quote(loop.device()));
    EXPECT_EQ(size.output, std::to_string(16 * kMiB) + "\n");
  }
  int fd = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  write_blocks(fd);
  // The writes wait in the kernel: the engine has seen none (without the cache each would have
  // made its region valid, uncommitted).
  CloneStatus cached = status_json(image());
  EXPECT_EQ(cached.regions_valid, 0u);
  EXPECT_EQ(cached.regions_uncommitted, 0u);
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  CloneStatus synced = status_json(image());
  EXPECT_EQ(synced.regions_valid, offsets_.size());
  EXPECT_EQ(synced.regions_uncommitted, 0u);
  ASSERT_TRUE(synced.counters);
  ASSERT_TRUE(cached.counters);
  EXPECT_EQ(synced.counters->destination_syncs, cached.counters->destination_syncs + 1)
      << "the pages written back, then one flush";
  ::close(fd);
  // Committed before fsync returned: a SIGKILL of everything now loses nothing.
  mounted_->kill_daemon();
  mounted_.reset();
  expect_blocks_kept();
}

TEST_F(WritebackCacheTest, PagesDirtyWhenTheServingProcessDiesReachItsSuccessor) {
  const int fd = open_mounted(kWriteback + " --restart-limit 100");
  ASSERT_GE(fd, 0);
  write_blocks(fd);
  const int serving = mounted_->daemon_pid();
  ASSERT_GT(serving, 0);
  ASSERT_EQ(::kill(serving, SIGKILL), 0);
  wait_until_gone(serving);
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  ::close(fd);
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.supervisor);
  EXPECT_EQ(s.supervisor->restarts, 1u);
  EXPECT_EQ(s.regions_valid, offsets_.size());
  unmount();
  expect_blocks_kept();
}

// As without the cache, a clean unmount keeps every write, fsynced or not: the kernel writes
// the pages back when the file is closed, before the final commit.
TEST_F(WritebackCacheTest, WritesClosedWithoutFsyncAreKeptByACleanUnmount) {
  const int fd = open_mounted(kWriteback);
  ASSERT_GE(fd, 0);
  write_blocks(fd);
  ::close(fd);
  unmount();
  expect_blocks_kept();
}

// The kernel takes a write past the end into its cache (it keeps the size itself): the write
// "succeeds", its writeback is refused, and the fsync after it reports EFBIG. Nothing reaches
// the destination or the metadata.
TEST_F(WritebackCacheTest, AWritePastTheEndFailsAtFsyncAndChangesNothing) {
  const int fd = open_mounted(kWriteback);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, block_.data(), block_.size(), static_cast<off_t>(16 * kMiB)), 4096);
  EXPECT_EQ(::fsync(fd), -1);
  EXPECT_EQ(errno, EFBIG);
  EXPECT_EQ(size_once_settled(image(), 16 * kMiB), static_cast<int64_t>(16 * kMiB))
      << "the kernel kept the size it grew for the write";
  EXPECT_EQ(read_count_at(image(), 16 * kMiB, 4096), 0) << "a read past the end returned bytes";
  ::close(fd);
  CloneStatus s = status_json(image());
  EXPECT_EQ(s.regions_valid, 0u);
  unmount();
  struct stat destination {};
  ASSERT_EQ(::stat(dest().c_str(), &destination), 0);
  EXPECT_EQ(static_cast<uint64_t>(destination.st_size), 16 * kMiB);
  EXPECT_EQ(destination.st_blocks, 0) << "the destination holds data";
  mount("--no-hydration");
  struct stat st {};
  ASSERT_EQ(::stat(image().c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 16 * kMiB);
}

// Issue 26, hole 4: a write straddling the end, taken into the kernel's cache whole. The part
// inside the image is written, the write fails (EFBIG, at the fsync that writes it back, as a
// write wholly past the end does) and the image keeps its size: once the write-back is refused,
// the kernel's size is put back while still mounted, and a read past the end returns nothing
// (before, the kernel kept the grown size and read the bytes past the end from its cache until
// the mount ended). Supervised, a child of the supervisor sends that truncate; unsupervised, the
// daemon does.
TEST_F(WritebackCacheTest, AWriteStraddlingTheEndWritesThePartInsideAndFailsAtFsync) {
  straddle_the_end(kWriteback);
}

TEST_F(WritebackCacheTest, AWriteStraddlingTheEndUnsupervisedKeepsTheSizeToo) {
  straddle_the_end(kWriteback + " --restart-limit 0");
}

}  // namespace
}  // namespace clonefs::testing
