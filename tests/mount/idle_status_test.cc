// Issue #18: a clone whose copy has ended must not report a copy going on. Minutes after
// hydration completed, status said "hydration running" at the last rate it had measured.
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

using IdleStatus = MountTest;

TEST_F(IdleStatus, ACompletedCloneLeftIdleReportsRateZeroAndComplete) {
  write_file(source(), random_bytes(32 << 20, 7));
  create("--region-size 64K");
  mount("--no-hydration");
  // Slow enough that the copy outlives a rate window: a rate is measured while copying.
  ASSERT_EQ(run(clonefs("hydrate " + shell_quote(image()) + " --rate 16M --resume")).exit_code, 0);
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(wait.exit_code, 0) << wait.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CloneStatus status = status_json(image());
  ASSERT_TRUE(status.hydration) << "a live status without hydration";
  EXPECT_EQ(status.hydration->rate_bytes_per_s, 0.0);
  EXPECT_EQ(status.hydration->state, "complete");
  CommandResult table = run(clonefs("status " + shell_quote(image())));
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_EQ(table.output.find("running"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("complete"), std::string::npos) << table.output;
}

}  // namespace
}  // namespace clonefs::testing
