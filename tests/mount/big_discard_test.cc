// blkdiscard of a whole 1 TiB clone at 4 KiB regions (268 Mi regions) through a loop device:
// runs of whole regions are one punch and one bitmap update each, so it takes seconds, and the
// commit after it (32 MiB of bitmap, 64 Ki chunks) goes through.
#include <chrono>
#include <cstdio>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

using BigDiscard = MountTest;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST_F(BigDiscard, BlkdiscardOfA1TiBCloneAt4KiBRegionsTakesSeconds) {
  CommandResult truncated = run("truncate -s 1T " + shell_quote(source()));
  ASSERT_EQ(truncated.exit_code, 0) << truncated.output;
  create("--region-size 4K");
  mount("--no-hydration");
  LoopDevice loop(image());
  ASSERT_TRUE(loop.ok()) << "losetup of " << image() << " failed";
  auto start = std::chrono::steady_clock::now();
  // Killed well past the bound, so a regression fails here instead of running for minutes.
  CommandResult discarded = run("timeout -s KILL 120 blkdiscard " + shell_quote(loop.device()));
  double took = seconds_since(start);
  std::printf("blkdiscard of 1 TiB at 4 KiB regions took %.2f s\n", took);
  ASSERT_EQ(discarded.exit_code, 0) << discarded.output << " (after " << took << " s)";
  EXPECT_LT(took, 60.0);
  CloneStatus live = status_json(image());
  EXPECT_EQ(live.regions_valid, uint64_t{1} << 28);
  EXPECT_TRUE(live.complete);
  loop.detach();
  start = std::chrono::steady_clock::now();
  unmount();  // the final commit: every chunk of the bitmap
  std::printf("unmount (commit of 268435456 regions) took %.2f s\n", seconds_since(start));
  CloneStatus committed = status_json(meta());
  EXPECT_EQ(committed.regions_valid, uint64_t{1} << 28);
  EXPECT_TRUE(committed.complete);
}

}  // namespace
}  // namespace clonefs::testing
