// Naming what keeps a file busy (issue #18: a refused unmount blamed a loop device while QEMU
// held the image).
#include "io/file_holders.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/holding_process.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

TEST(FileHolders, NamesAProcessHoldingTheFileOpenWithItsCommand) {
  TempDir dir;
  write_file(dir.file("image"), random_bytes(4096, 1));
  HoldingProcess sleeper(dir.file("image"));
  ASSERT_GT(sleeper.pid(), 0);
  for (int i = 0; i < 500 && !sleeper.holding(dir.file("image")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto holders = processes_holding(dir.file("image"));
  ASSERT_EQ(holders.size(), 1u);
  EXPECT_EQ(holders[0].pid, sleeper.pid());
  EXPECT_EQ(holders[0].command, "sleep");
  std::string text = describe_holders(dir.file("image"));
  EXPECT_NE(text.find("pid " + std::to_string(sleeper.pid()) + " (sleep)"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("loop"), std::string::npos) << text;
  sleeper.stop();
  EXPECT_TRUE(processes_holding(dir.file("image")).empty());
  EXPECT_EQ(describe_holders(dir.file("image")), "");
}

TEST(FileHolders, ARelativeOrDottedPathNamesTheSameFile) {
  TempDir dir;
  write_file(dir.file("image"), random_bytes(4096, 2));
  HoldingProcess sleeper(dir.file("image"));
  for (int i = 0; i < 500 && !sleeper.holding(dir.file("image")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(processes_holding(dir.path() + "/./image").size(), 1u);
}

}  // namespace
}  // namespace clonefs::testing
