// Issue #4 through real mounts: background hydration while in use, sparse sources, controls,
// and resuming after the daemon is killed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class HydrationMount : public MountTest {
 protected:
  CloneStatus status(const std::string& target) { return status_json(target); }
  uint64_t valid(const std::string& target) { return status(target).regions_valid; }
  void hydrate(const std::string& flags) {
    CommandResult r = run(clonefs("hydrate " + shell_quote(image()) + " " + flags));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
};

TEST_F(HydrationMount, HydratesFullyWhileAWriterChangesRegions) {
  write_file(source(), random_bytes(256 * kMiB, 31));
  const std::string source_digest = file_digest(source());
  create();
  mount();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int fd = ::open(image().c_str(), O_WRONLY);
    std::mt19937_64 rng(5);
    while (!stop.load()) {
      auto bytes = random_bytes(1 + rng() % 70000, rng());
      off_t offset = static_cast<off_t>(rng() % (256 * kMiB - bytes.size()));
      if (::pwrite(fd, bytes.data(), bytes.size(), offset) < 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::fsync(fd);
    ::close(fd);
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  writer.join();
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(wait.exit_code, 0) << wait.output;
  EXPECT_TRUE(status(image()).complete);
  // META of a running mount: the committed state, in use by the daemon...
  CloneStatus offline = status(meta());
  EXPECT_EQ(offline.metadata_mode, "in-use") << offline.metadata_mode_reason;
  EXPECT_TRUE(offline.pid.has_value());
  EXPECT_EQ(offline.pid, status(image()).pid);
  unmount();
  // ...and once unmounted, not in use (status's own shared lock is not a mount).
  offline = status(meta());
  EXPECT_EQ(offline.metadata_mode, "unmounted") << offline.metadata_mode_reason;
  EXPECT_FALSE(offline.mounted);
  // The destination alone is now the image; the source never changed.
  CommandResult finalize = run(clonefs("finalize --metadata " + shell_quote(meta())));
  EXPECT_EQ(finalize.exit_code, 0) << finalize.output;
  mount("--no-hydration");
  EXPECT_EQ(run("cmp " + shell_quote(dest()) + " " + shell_quote(image())).exit_code, 0);
  EXPECT_EQ(file_digest(source()), source_digest);
}

TEST_F(HydrationMount, SparseSourceStaysSparseInTheDestination) {
  // 1 GiB with holes, 8 MiB of data and 8 MiB of written (allocated) zeros.
  int fd = ::open(source().c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 1024 * kMiB), 0);
  for (int i = 0; i < 8; ++i) {
    auto data = random_bytes(kMiB, static_cast<uint64_t>(i));
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(i * 100 * kMiB)),
              static_cast<ssize_t>(kMiB));
    std::vector<std::byte> zeros(kMiB);
    ASSERT_EQ(
        ::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(i * 100 * kMiB + 50 * kMiB)),
        static_cast<ssize_t>(kMiB));
  }
  ::fsync(fd);
  ::close(fd);
  // Read and written, the zeros are found and left sparse; copied by the kernel (the default for
  // two files of one file system without reflink) they are copied, the holes still are not.
  for (const char* method : {"read-write", "copy_file_range"}) {
    SCOPED_TRACE(method);
    ::unlink(dest().c_str());
    ::unlink(meta().c_str());
    create("--force");
    mount(std::string("--copy-method ") + method);
    CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
    ASSERT_EQ(wait.exit_code, 0) << wait.output;
    EXPECT_EQ(run("cmp " + shell_quote(image()) + " " + shell_quote(source())).exit_code, 0);
    unmount();
    struct stat st {};
    ASSERT_EQ(::stat(dest().c_str(), &st), 0);
    const uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
    const uint64_t expected = std::string(method) == "read-write" ? 8 * kMiB : 16 * kMiB;
    EXPECT_LE(allocated, expected * 105 / 100) << "destination allocated " << allocated << " bytes";
    EXPECT_GE(allocated, expected);
  }
}

TEST_F(HydrationMount, PauseResumeAndRateLimitChangeWhatHappens) {
  write_file(source(), random_bytes(128 * kMiB, 41));
  create("--region-size 64K");
  mount("--no-hydration");
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(valid(image()), 0u) << "hydration ran while paused";
  hydrate("--rate 8M --resume");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  uint64_t v0 = valid(image());
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  uint64_t v1 = valid(image());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double rate = static_cast<double>((v1 - v0) * 65536) / seconds;
  EXPECT_NEAR(rate, 8.0 * kMiB, 8.0 * kMiB * 0.2) << "measured " << rate / kMiB << " MiB/s";
  hydrate("--pause");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  uint64_t v2 = valid(image());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(valid(image()), v2) << "progress while paused";
  CloneStatus s = status(image());
  ASSERT_TRUE(s.hydration);
  EXPECT_TRUE(s.hydration->controls.paused);
  hydrate("--threshold 8 --batch 4 --rate 0 --resume");
  s = status(image());
  ASSERT_TRUE(s.hydration);
  EXPECT_EQ(s.hydration->controls.threshold, 8u);
  EXPECT_EQ(s.hydration->controls.batch, 4u);
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  EXPECT_EQ(wait.exit_code, 0) << wait.output;
}

TEST_F(HydrationMount, KilledDaemonResumesWithoutRecopyingCommittedRegions) {
  write_file(source(), random_bytes(64 * kMiB, 51));
  create("--region-size 64K");
  mount("--no-hydration");
  hydrate("--rate 16M --resume");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  mounted_->kill_daemon();
  mounted_.reset();
  uint64_t committed = valid(meta());
  EXPECT_GT(committed, 0u) << "nothing committed in 2.5 s of hydration";
  EXPECT_LT(committed, 1024u);
  mount();
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(wait.exit_code, 0) << wait.output;
  auto counters = status(image()).counters;
  ASSERT_TRUE(counters) << "a live status without counters";
  uint64_t done = counters->regions_copied + counters->regions_skipped;
  EXPECT_EQ(done, 1024u - committed) << "committed regions were copied again";
  EXPECT_EQ(run("cmp " + shell_quote(image()) + " " + shell_quote(source())).exit_code, 0);
}

}  // namespace
}  // namespace clonefs::testing
