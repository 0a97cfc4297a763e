// `clonefs hydrate` refuses absurd --batch/--threshold values, naming the limit, before it sends
// anything: a batch locks that many regions at once.
#include <nlohmann/json.hpp>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

using HydrateLimits = MountTest;

TEST_F(HydrateLimits, AbsurdBatchAndThresholdAreRefusedNamingTheLimit) {
  write_file(source(), random_bytes(1 << 20, 3));
  create();
  mount("--no-hydration");
  CommandResult batch = run(clonefs("hydrate " + shell_quote(image()) + " --batch 100000 --resume"));
  EXPECT_NE(batch.exit_code, 0) << batch.output;
  EXPECT_NE(batch.output.find("1024"), std::string::npos) << batch.output;
  CommandResult threshold = run(clonefs("hydrate " + shell_quote(image()) + " --threshold 100000"));
  EXPECT_NE(threshold.exit_code, 0) << threshold.output;
  EXPECT_NE(threshold.output.find("65536"), std::string::npos) << threshold.output;
  CommandResult fine = run(clonefs("hydrate " + shell_quote(image()) + " --batch 1024 --threshold 65536"));
  EXPECT_EQ(fine.exit_code, 0) << fine.output;
  auto status = nlohmann::json::parse(run(clonefs("status --json " + shell_quote(image()))).output, nullptr, false);
  ASSERT_FALSE(status.is_discarded());
  EXPECT_EQ(status["hydration"].value("batch", 0), 1024);
  EXPECT_EQ(status["hydration"].value("threshold", 0), 65536);
  EXPECT_TRUE(status["hydration"].value("paused", false)) << "the refused command line was partly applied (--resume)";
}

}  // namespace
}  // namespace clonefs::testing
