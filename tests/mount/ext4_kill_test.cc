// Issue #5 part 2, the filesystem variant: ext4 on a loop device over the clone, files written
// and fsynced while the daemon is SIGKILLed at random moments. After each kill: remount the
// clone, replay the journal, check every fsynced file, and e2fsck -fn is clean.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <random>
#include <thread>
#include <tuple>

#include "mount/kill_target.h"

namespace clonefs::testing {
namespace {

// What is killed, and whether clonefs runs with --writeback-cache (fsynced files must survive
// the kill with the kernel caching writes as well).
class Ext4SigkillTest : public MountTest,
                        public ::testing::WithParamInterface<std::tuple<KillTarget, bool>> {
 protected:
  KillTarget target() const { return std::get<0>(GetParam()); }
  std::string flags() const {
    return mount_flags_for(target()) + (std::get<1>(GetParam()) ? " --writeback-cache" : "");
  }
};

int ext4_kill_rounds() {
  const char* env = std::getenv("CLONEFS_EXT4_KILL_ROUNDS");
  return env ? std::atoi(env) : 4;
}

TEST_P(Ext4SigkillTest, Ext4FsyncedFilesSurviveSigkillOfTheDaemon) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  CommandResult mkfs = run("mkfs.ext4 -q -F " + shell_quote(source()) + " 64M");
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
  create("--region-size 64K");
  std::map<std::string, std::vector<std::byte>> acknowledged;  // fsynced files and their bytes
  const std::string mnt = dir_.file("mnt");
  for (int round = 0; round <= ext4_kill_rounds(); ++round) {
    mount(flags());
    auto loop = std::make_unique<LoopDevice>(image());
    ASSERT_TRUE(loop->ok());
    auto fs = std::make_unique<FilesystemMount>(loop->device(), mnt);
    ASSERT_TRUE(fs->ok()) << "round " << round << ": ext4 does not mount after the kill";
    for (const auto& [name, bytes] : acknowledged) {
      ASSERT_TRUE(read_file(mnt + "/" + name) == bytes)
          << "round " << round << ": fsynced " << name << " lost";
    }
    if (round == ext4_kill_rounds()) {
      fs->unmount();
      CommandResult fsck = run("e2fsck -fn " + shell_quote(loop->device()));
      EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
      break;
    }
    const int serving = mounted_->daemon_pid();
    const int pid = pid_to_kill(*mounted_, target());
    ASSERT_GT(pid, 0);
    std::thread killer([pid, delay = std::chrono::milliseconds(200 + rng() % 800)] {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
    });
    for (int i = 0;; ++i) {
      std::string name = "r" + std::to_string(round) + "-" + std::to_string(i);
      auto bytes = random_bytes(1 + rng() % 200000, rng());
      if (!write_and_fsync(mnt + "/" + name, bytes)) break;
      acknowledged[name] = std::move(bytes);
    }
    killer.join();
    wait_until_gone(serving);
    fs.reset();    // lazy unmount of the filesystem whose device died
    loop.reset();  // detach
    mounted_->kill_daemon();
    mounted_.reset();
  }
  std::printf("ext4 SIGKILLs survived: %d, fsynced files checked: %zu\n", ext4_kill_rounds(),
              acknowledged.size());
}

INSTANTIATE_TEST_SUITE_P(Kill, Ext4SigkillTest,
                         ::testing::Combine(::testing::Values(KillTarget::kUnsupervisedDaemon,
                                                              KillTarget::kSupervisor),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return kill_target_name({std::get<0>(info.param), info.index}) +
                                  (std::get<1>(info.param) ? "_WritebackCache" : "");
                         });

}  // namespace
}  // namespace clonefs::testing
