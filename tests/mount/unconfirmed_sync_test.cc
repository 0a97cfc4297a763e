// Issue 26, hole 1: a serving process SIGKILLed inside an fdatasync of the destination that then
// fails. The dying process's own file consumes the write-back error (the kernel reports it once
// per open file description, and a description opened afterwards never sees it); a successor that
// synced only its own fresh descriptor found nothing wrong, adopted the region the dead process
// had recorded, committed it and answered the resent fsync with 0 — over bytes that never reached
// the disk. Reproduced for real: the destination is a loop device over a second clone (not
// supervised) whose own destination is on a full tmpfs, and whose daemon is stopped while the
// first clone's commit waits in fdatasync, then continued once the serving process is killed.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion = 64 << 10;

// Whether a thread of `pid` is inside `syscall_number` now (/proc/PID/task/TID/syscall).
bool thread_in_syscall(int pid, long syscall_number) {
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "syscall");
    std::string first;
    if (in >> first && first == std::to_string(syscall_number)) return true;
  }
  return false;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class UnconfirmedSync : public MountTest {};

TEST_F(UnconfirmedSync, AKillInsideAFailingDestinationSyncFailsTheFsyncsAfterIt) {
  // The second clone: its destination on a tmpfs about to be full, its image under a loop device.
  SmallDisk small(dir_.file("small"), "1m");
  ASSERT_TRUE(small.ok());
  write_file(dir_.file("lower-source.img"), std::vector<std::byte>(16 * kMiB));
  CommandResult lower_create = run(
      clonefs("create --region-size 64K --source " + shell_quote(dir_.file("lower-source.img")) +
              " --dest " + shell_quote(dir_.file("small/lower-dest.img")) + " --metadata " +
              shell_quote(dir_.file("lower-meta.db"))));
  ASSERT_EQ(lower_create.exit_code, 0) << lower_create.output;
  MountedImage lower(dir_.file("lower-meta.db"), dir_.file("lower-image"),
                     "--restart-limit 0 --no-hydration");
  ASSERT_TRUE(lower.ok()) << lower.result().output;
  LoopDevice loop(dir_.file("lower-image"));
  ASSERT_TRUE(loop.ok());
  // The clone under test is unmounted before the loop device and the lower clone go.
  struct UnmountFirst {
    std::unique_ptr<MountedImage>& mounted;
    ~UnmountFirst() { mounted.reset(); }
  } unmount_first{mounted_};

  // The clone under test, its destination that loop device.
  const auto source_bytes = random_bytes(16 * kMiB, 261);
  write_file(source(), source_bytes);
  CommandResult created =
      run(clonefs("create --region-size 64K --source " + shell_quote(source()) + " --dest " +
                  shell_quote(loop.device()) + " --metadata " + shell_quote(meta())));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  mount("--no-hydration --restart-limit 10");

  constexpr uint64_t kWritten = 5 * kRegion;
  // In the loop device's page cache before the lower daemon stops: the write below then needs
  // no read through it.
  {
    int dev = ::open(loop.device().c_str(), O_RDONLY);
    ASSERT_GE(dev, 0);
    std::vector<std::byte> warm(kRegion);
    ASSERT_EQ(::pread(dev, warm.data(), warm.size(), kWritten), static_cast<ssize_t>(kRegion));
    ::close(dev);
  }
  run("dd if=/dev/zero of=" + shell_quote(dir_.file("small/filler")) + " bs=64k 2>/dev/null; df " +
      shell_quote(dir_.file("small")));
  const int lower_pid = lower.daemon_pid();
  ASSERT_GT(lower_pid, 0);
  ASSERT_EQ(::kill(lower_pid, SIGSTOP), 0);
  struct Continue {
    int pid;
    ~Continue() { ::kill(pid, SIGCONT); }
  } continue_lower{lower_pid};

  const int serving = mounted_->daemon_pid();
  ASSERT_GT(serving, 0);
  int fd = ::open(image().c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const auto written = random_bytes(kRegion, 262);
  // A whole region: answered once in the destination's page cache and recorded as valid.
  ASSERT_EQ(::pwrite(fd, written.data(), written.size(), kWritten), static_cast<ssize_t>(kRegion));
  std::atomic<bool> done{false};
  int fsync_rc = 0, fsync_errno = 0;
  std::thread user([&] {
    fsync_rc = ::fsync(fd);
    fsync_errno = errno;
    done = true;
  });
  // The commit (the user's or the periodic one) waits in fdatasync: the write-back goes through
  // the loop device to the stopped lower daemon.
  const bool in_sync =
      wait_for([&] { return thread_in_syscall(serving, SYS_fdatasync); }, std::chrono::seconds(20));
  EXPECT_TRUE(in_sync) << "the serving process never waited in fdatasync";
  ASSERT_EQ(::kill(serving, SIGKILL), 0);
  ::kill(lower_pid, SIGCONT);  // the lower clone now fails the write-back: its disk is full
  const bool answered = wait_for([&] { return done.load(); }, std::chrono::seconds(60));
  if (!answered) mounted_->kill_daemon();
  user.join();
  ASSERT_TRUE(answered) << "the fsync was never answered";

  // The write-back failed: the fsync that covered it must fail, and every later one.
  EXPECT_EQ(fsync_rc, -1) << "the fsync after a failed write-back returned 0";
  EXPECT_EQ(fsync_errno, EIO) << std::strerror(fsync_errno);
  EXPECT_EQ(::fsync(fd), -1) << "a later fsync succeeded after the failed write-back";
  ::close(fd);
  CloneStatus live = status_json(image());
  EXPECT_EQ(live.metadata_mode, "fail") << live.metadata_mode_reason;
  EXPECT_NE(mounted_->daemon_pid(), serving);
  CommandResult unmounted = mounted_->unmount();
  EXPECT_NE(unmounted.exit_code, 0) << "unmount hid the failure:\n" << unmounted.output;
  mounted_.reset();
  // The metadata never claims the region whose data the failed write-back lost.
  CloneStatus offline = status_json(meta());
  EXPECT_EQ(offline.regions_valid, 0u) << "the lost region was committed as valid";

  // Remounted (the lower disk has room again): the region reads the source.
  std::filesystem::remove(dir_.file("small/filler"));
  mount("--no-hydration");
  std::vector<std::byte> got(kRegion);
  int again = ::open(image().c_str(), O_RDONLY);
  ASSERT_GE(again, 0);
  ASSERT_EQ(::pread(again, got.data(), got.size(), kWritten), static_cast<ssize_t>(kRegion));
  ::close(again);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), source_bytes.begin() + kWritten))
      << "the region whose write-back failed does not read the source";
  unmount();
  loop.detach();
}

}  // namespace
}  // namespace clonefs::testing
