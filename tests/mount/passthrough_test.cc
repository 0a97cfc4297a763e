// Issue #27: once every region is valid, an open of IMAGE is handed to the kernel (FUSE
// passthrough), which reads and writes the destination itself; opens made earlier keep the FUSE
// path (fuse/passthrough.h). What tells the two apart here: the status's counts of each kind of
// open, and the FUSE requests the serving process reads (a passthrough file's reads and writes are
// not among them).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr size_t kBlock = 4096;
constexpr int kWrites = 256;

class PassthroughMount : public MountTest {
 protected:
  StatusPassthrough passthrough() {
    CloneStatus s = status_json(image());
    EXPECT_TRUE(s.passthrough) << "no passthrough object in the live status";
    return s.passthrough.value_or(StatusPassthrough{});
  }
  // The kernel sends RELEASE after close(2) has returned, so the daemon's counts of open files
  // (and with them its choice for the next open) can lag a close by a moment; they only ever
  // settle downwards. Polls until `settled` holds, for at most 5 s, and returns the last status.
  StatusPassthrough passthrough_once(const std::function<bool(const StatusPassthrough&)>& settled) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    StatusPassthrough p = passthrough();
    while (!settled(p) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      p = passthrough();
    }
    return p;
  }
  StatusPassthrough passthrough_with(uint32_t passthrough_opens, uint32_t fuse_opens) {
    return passthrough_once([&](const StatusPassthrough& p) {
      return p.passthrough_opens == passthrough_opens && p.fuse_opens == fuse_opens;
    });
  }
  void hydrate_all() {
    CommandResult r = run(clonefs("hydrate --resume " + shell_quote(image())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = run(clonefs("hydrate --wait " + shell_quote(image())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // kWrites 4 KiB writes of `fill` from `offset`, one request each through the daemon.
  static void write_blocks(int fd, uint64_t offset, char fill) {
    std::vector<char> block(kBlock, fill);
    for (int i = 0; i < kWrites; ++i) {
      ASSERT_EQ(::pwrite(fd, block.data(), kBlock, static_cast<off_t>(offset + i * kBlock)),
                static_cast<ssize_t>(kBlock));
    }
  }
  static std::vector<std::byte> pread_fd(int fd, uint64_t offset, size_t length) {
    std::vector<std::byte> bytes(length);
    if (::pread(fd, bytes.data(), length, static_cast<off_t>(offset)) !=
        static_cast<ssize_t>(length))
      return {};
    return bytes;
  }
  static std::vector<std::byte> expected_fill(char fill, size_t length) {
    return std::vector<std::byte>(length, static_cast<std::byte>(fill));
  }
};

// Opens made before completion, and while one of them is still open, are served by the daemon;
// once they are closed the next open is the kernel's, whose writes reach no serving process, not
// even to ask for security.capability before each one (GETXATTR is answered ENOSYS once).
TEST_F(PassthroughMount, OpensAfterCompletionBypassTheDaemonAndEarlierOnesDoNot) {
  const std::vector<std::byte> source_bytes = random_bytes(16 * kMiB, 27);
  write_file(source(), source_bytes);
  create("--region-size 64K");
  mount("--no-hydration");
  int before = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(before, 0) << std::strerror(errno);
  EXPECT_EQ(passthrough().state, "waiting");
  hydrate_all();
  // Completion does not change an open file, nor an open made while it is open.
  int during = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(during, 0) << std::strerror(errno);
  StatusPassthrough p = passthrough_with(0, 3);
  EXPECT_EQ(p.passthrough_opens, 0u);
  EXPECT_EQ(p.fuse_opens, 3u);  // before, during and the status's own
  // Every region is valid now: what keeps passthrough off is the opens held, and the reason says
  // so.
  EXPECT_EQ(p.state, "waiting");
  EXPECT_NE(p.reason.find("the 3 files opened through clonefs are closed"), std::string::npos)
      << p.reason;
  const uint64_t r0 = p.requests;
  write_blocks(before, 0, 'a');
  const uint64_t fuse_requests = passthrough().requests - r0;
  EXPECT_GE(fuse_requests, static_cast<uint64_t>(kWrites)) << "FUSE-path writes reached no daemon";
  ::close(before);
  ::close(during);
  // Once their releases have arrived, the next open (the status's own here) is the kernel's.
  p = passthrough_once([](const StatusPassthrough& p) { return p.fuse_opens == 0; });
  EXPECT_EQ(p.state, "active") << p.reason;
  EXPECT_EQ(p.fuse_opens, 0u) << "the releases of the FUSE-path opens never arrived";

  int after = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(after, 0) << std::strerror(errno);
  p = passthrough_with(2, 0);
  EXPECT_EQ(p.state, "active") << p.reason;
  EXPECT_EQ(p.passthrough_opens, 2u);  // after and the status's own
  EXPECT_EQ(p.fuse_opens, 0u);
  // The source can go: nothing reads it any more.
  ASSERT_EQ(::unlink(source().c_str()), 0);
  const uint64_t r1 = p.requests;
  write_blocks(after, kMiB, 'b');
  EXPECT_EQ(pread_fd(after, kMiB, kBlock), expected_fill('b', kBlock));
  EXPECT_EQ(pread_fd(after, 0, kBlock), expected_fill('a', kBlock));
  EXPECT_EQ(pread_fd(after, 8 * kMiB, kBlock),
            std::vector<std::byte>(source_bytes.begin() + 8 * kMiB,
                                   source_bytes.begin() + 8 * kMiB + kBlock));
  // The status itself costs a few requests (open, ioctl, flush, release): not one per write.
  const uint64_t passthrough_requests = passthrough().requests - r1;
  EXPECT_LT(passthrough_requests, 32u) << "passthrough writes reached the daemon";

  // fsync still reaches the daemon, and syncs the destination (nothing to commit).
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.counters);
  const uint64_t syncs = s.counters->destination_syncs;
  ASSERT_EQ(::fsync(after), 0) << std::strerror(errno);
  s = status_json(image());
  ASSERT_TRUE(s.counters);
  EXPECT_GT(s.counters->destination_syncs, syncs) << "fsync of a passthrough file synced nothing";
  ::close(after);
  EXPECT_EQ(passthrough_with(1, 0).passthrough_opens, 1u);  // the status's own
  unmount();
  std::vector<std::byte> dest_bytes = read_file(dest());
  ASSERT_GE(dest_bytes.size(), 2 * kMiB);
  EXPECT_EQ(std::vector<std::byte>(dest_bytes.begin() + kMiB, dest_bytes.begin() + kMiB + kBlock),
            expected_fill('b', kBlock));
}

TEST_F(PassthroughMount, NoPassthroughKeepsEveryOpenOnTheFusePath) {
  write_file(source(), random_bytes(4 * kMiB, 28));
  create("--region-size 64K");
  mount("--no-passthrough");
  CommandResult r = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int fd = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  StatusPassthrough p = passthrough_with(0, 2);
  EXPECT_EQ(p.state, "off");
  EXPECT_EQ(p.passthrough_opens, 0u);
  EXPECT_EQ(p.fuse_opens, 2u);
  ::close(fd);
  unmount();
}

// A SIGKILL of the serving process leaves a passthrough file as it was: the kernel holds the
// backing file, reads and writes go on while no process serves, and the successor's opens share
// that backing file (the ledger the supervisor keeps), so none fails with EIO.
TEST_F(PassthroughMount, KillAndRestartLeaveOpenPassthroughFilesWorking) {
  write_file(source(), random_bytes(8 * kMiB, 29));
  create("--region-size 64K");
  mount("--restart-limit 10");
  CommandResult r = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int fd = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(passthrough_with(2, 0).passthrough_opens, 2u);
  write_blocks(fd, 0, 'c');
  const int killed = mounted_->daemon_pid();
  ASSERT_GT(killed, 0);
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  // No serving process may be running now: the kernel does this alone.
  write_blocks(fd, 2 * kMiB, 'd');
  EXPECT_EQ(pread_fd(fd, 0, kBlock), expected_fill('c', kBlock));
  EXPECT_EQ(pread_fd(fd, 2 * kMiB, kBlock), expected_fill('d', kBlock));
  // The successor: same counts, and a new open shares the backing file.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (mounted_->daemon_pid() == killed || mounted_->daemon_pid() <= 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "no successor";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.supervisor);
  EXPECT_EQ(s.supervisor->restarts, 1u);
  ASSERT_TRUE(s.passthrough);
  EXPECT_EQ(passthrough_with(2, 0).passthrough_opens, 2u) << s.passthrough->reason;
  int again = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(again, 0) << std::strerror(errno);
  EXPECT_EQ(pread_fd(again, 2 * kMiB, kBlock), expected_fill('d', kBlock));
  EXPECT_EQ(passthrough_with(3, 0).passthrough_opens, 3u);
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  ::close(again);
  ::close(fd);
  unmount();
  std::vector<std::byte> dest_bytes = read_file(dest());
  ASSERT_GE(dest_bytes.size(), 3 * kMiB);
  EXPECT_EQ(
      std::vector<std::byte>(dest_bytes.begin() + 2 * kMiB, dest_bytes.begin() + 2 * kMiB + kBlock),
      expected_fill('d', kBlock));
}

// The metadata must say every region is valid before the kernel is given DEST: a commit that fails
// first (the metadata's disk full) leaves the clone read-only and its later opens on the FUSE path,
// even once every region of the image has been written.
TEST_F(PassthroughMount, ACommitFailureBeforeCompletionMeansNoPassthrough) {
  SmallDisk disk(dir_.file("small"), "256k");
  ASSERT_TRUE(disk.ok());
  write_file(source(), random_bytes(1 * kMiB, 30));
  CommandResult created =
      run(clonefs("create --source " + shell_quote(source()) + " --dest " + shell_quote(dest()) +
                  " --metadata " + shell_quote(dir_.file("small/meta.db")) + " --region-size 4K"));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  mounted_ = std::make_unique<MountedImage>(dir_.file("small/meta.db"), image(), "--no-hydration");
  ASSERT_TRUE(mounted_->ok()) << mounted_->result().output;
  run("head -c 10M /dev/zero > " + shell_quote(dir_.file("small/filler")));
  std::string mode;
  for (int i = 0; i < 40 && mode != "ro"; ++i) {
    // Every region written whole: valid at once, until the commit recording them fails.
    int fd = ::open(image().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    auto bytes = random_bytes(1 * kMiB, 31 + static_cast<uint64_t>(i));
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    (void)::fsync(fd);
    ::close(fd);
    mode = status_json(image()).metadata_mode;
  }
  ASSERT_EQ(mode, "ro") << "the commit never failed";
  run("rm -f " + shell_quote(dir_.file("small/filler")));
  int fd = ::open(image().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  StatusPassthrough p = passthrough_with(0, 2);
  EXPECT_EQ(p.passthrough_opens, 0u) << p.state << ": " << p.reason;
  EXPECT_EQ(p.fuse_opens, 2u);
  EXPECT_NE(p.state, "active");
  ::close(fd);
  CommandResult unmounted = mounted_->unmount();
  EXPECT_NE(unmounted.exit_code, 0) << "the unmount hid the failed commit";
  mounted_.reset();
}

}  // namespace
}  // namespace clonefs::testing
