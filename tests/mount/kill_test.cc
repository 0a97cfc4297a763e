// Issue #5 part 2: SIGKILL the daemon at random moments while a writer fsyncs and hydration
// runs; after each kill, remount and check that every fsync-acknowledged write is there and
// every other block reads its old or one of its newer contents (docs/SEMANTICS.md "After a crash").
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "mount/kill_target.h"

namespace clonefs::testing {
namespace {

class SigkillTest : public MountTest, public ::testing::WithParamInterface<KillTarget> {};

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kImageSize = 32 << 20;

using Block = std::vector<std::byte>;

// What each block may read after a crash: its acknowledged content, or any write to it since.
struct CrashModel {
  std::vector<Block> acknowledged;
  std::map<uint64_t, std::vector<Block>> pending;

  explicit CrashModel(const std::vector<std::byte>& source) {
    for (uint64_t b = 0; b < kImageSize / kBlock; ++b) {
      acknowledged.emplace_back(source.begin() + static_cast<long>(b * kBlock),
                                source.begin() + static_cast<long>((b + 1) * kBlock));
    }
  }
  void written(uint64_t block, Block bytes) { pending[block].push_back(std::move(bytes)); }
  void flushed() {
    for (auto& [block, versions] : pending) acknowledged[block] = versions.back();
    pending.clear();
  }
  // After a remount, what the block reads becomes its acknowledged content.
  bool settle(uint64_t block, const Block& got) {
    bool allowed = got == acknowledged[block];
    if (auto it = pending.find(block); it != pending.end()) {
      for (const Block& v : it->second) allowed = allowed || got == v;
    }
    acknowledged[block] = got;
    return allowed;
  }
};

int kill_rounds() {
  const char* env = std::getenv("CLONEFS_KILL_ROUNDS");
  return env ? std::atoi(env) : 12;
}

TEST_P(SigkillTest, SigkillUnderLoadLosesNoFsyncedWrite) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto source_bytes = random_bytes(kImageSize, 61);
  write_file(source(), source_bytes);
  create("--region-size 64K");
  CrashModel model(source_bytes);
  int kills = 0;
  for (int round = 0; round <= kill_rounds(); ++round) {
    mount("--no-hydration " + mount_flags_for(GetParam()));
    // Slow enough that kills land mid-hydration.
    ASSERT_EQ(run(clonefs("hydrate --rate 16M --resume " + shell_quote(image()))).exit_code, 0);
    auto image_bytes = read_file(image());
    ASSERT_EQ(image_bytes.size(), kImageSize);
    for (uint64_t b = 0; b < kImageSize / kBlock; ++b) {
      Block got(image_bytes.begin() + static_cast<long>(b * kBlock),
                image_bytes.begin() + static_cast<long>((b + 1) * kBlock));
      ASSERT_TRUE(model.settle(b, got)) << "round " << round << ": block " << b
                                        << " reads data nobody wrote or lost an fsynced write";
    }
    model.pending.clear();
    if (round == kill_rounds()) break;

    int fd = ::open(image().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const int serving = mounted_->daemon_pid();
    const int pid = pid_to_kill(*mounted_, GetParam());
    ASSERT_GT(pid, 0);
    auto kill_after = std::chrono::milliseconds(100 + rng() % 900);
    std::thread killer([pid, kill_after] {
      std::this_thread::sleep_for(kill_after);
      ::kill(pid, SIGKILL);
    });
    for (int i = 0;; ++i) {
      uint64_t block = rng() % (kImageSize / kBlock);
      Block bytes = random_bytes(kBlock, rng());
      model.written(block, bytes);  // before the write: it may land even if the call fails
      if (::pwrite(fd, bytes.data(), kBlock, static_cast<off_t>(block * kBlock)) !=
          static_cast<ssize_t>(kBlock))
        break;
      if (i % 8 == 7) {
        if (::fsync(fd) != 0) break;
        model.flushed();
      }
    }
    killer.join();
    ::close(fd);
    wait_until_gone(serving);
    mounted_->kill_daemon();  // already dead: clears the dead mount
    mounted_.reset();
    ++kills;
  }
  RecordProperty("kills", kills);
  std::printf("SIGKILLs survived: %d\n", kills);
  unmount();
}

INSTANTIATE_TEST_SUITE_P(Kill, SigkillTest,
                         ::testing::Values(KillTarget::kUnsupervisedDaemon,
                                           KillTarget::kSupervisor),
                         kill_target_name);

}  // namespace
}  // namespace clonefs::testing
