// `clonefs hydrate` refuses absurd --batch/--threshold values, naming the limit, before it sends
// anything: a batch locks that many regions at once.

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

using HydrateLimits = MountTest;

TEST_F(HydrateLimits, AbsurdBatchAndThresholdAreRefusedNamingTheLimit) {
  write_file(source(), random_bytes(1 << 20, 3));
  create();
  mount("--no-hydration");
  CommandResult batch =
      run(clonefs("hydrate " + shell_quote(image()) + " --batch 100000 --resume"));
  EXPECT_NE(batch.exit_code, 0) << batch.output;
  EXPECT_NE(batch.output.find("1024"), std::string::npos) << batch.output;
  CommandResult threshold = run(clonefs("hydrate " + shell_quote(image()) + " --threshold 100000"));
  EXPECT_NE(threshold.exit_code, 0) << threshold.output;
  EXPECT_NE(threshold.output.find("65536"), std::string::npos) << threshold.output;
  CommandResult fine =
      run(clonefs("hydrate " + shell_quote(image()) + " --batch 1024 --threshold 65536"));
  EXPECT_EQ(fine.exit_code, 0) << fine.output;
  CloneStatus status = status_json(image());
  ASSERT_TRUE(status.hydration) << "a live status without hydration";
  EXPECT_EQ(status.hydration->controls.batch, 1024u);
  EXPECT_EQ(status.hydration->controls.threshold, 65536u);
  EXPECT_TRUE(status.hydration->controls.paused)
      << "the refused command line was partly applied (--resume)";
}

}  // namespace
}  // namespace clonefs::testing
