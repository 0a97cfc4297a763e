// Issue #18: messages that name the real cause. A refused unmount blamed a loop device while
// QEMU held the image; `hydrate --wait` of an unmounted image spoke of waiting it never did.
#include <thread>

#include "mount/mount_fixture.h"
#include "support/holding_process.h"

namespace clonefs::testing {
namespace {

using BusyUnmount = MountTest;

TEST_F(BusyUnmount, NamesTheProcessHoldingTheImageOpen) {
  write_file(source(), random_bytes(4 << 20, 5));
  create();
  mount("--no-hydration");
  HoldingProcess sleeper(image());
  ASSERT_GT(sleeper.pid(), 0);
  for (int i = 0; i < 500 && !sleeper.holding(image()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(sleeper.holding(image()));
  CommandResult busy = run(clonefs("unmount " + shell_quote(image())));
  EXPECT_NE(busy.exit_code, 0) << busy.output;
  EXPECT_NE(busy.output.find("pid " + std::to_string(sleeper.pid()) + " (sleep)"),
            std::string::npos)
      << busy.output;
  EXPECT_EQ(busy.output.find("losetup"), std::string::npos) << "blames a loop device:\n"
                                                            << busy.output;
  sleeper.stop();
  unmount();
}

TEST_F(BusyUnmount, NamesTheLoopDeviceBackedByTheImage) {
  write_file(source(), random_bytes(4 << 20, 6));
  create();
  mount("--no-hydration");
  LoopDevice loop(image());
  ASSERT_TRUE(loop.ok());
  CommandResult busy = run(clonefs("unmount " + shell_quote(image())));
  EXPECT_NE(busy.exit_code, 0) << busy.output;
  EXPECT_NE(busy.output.find(loop.device()), std::string::npos) << busy.output;
  loop.detach();
  unmount();
}

TEST_F(BusyUnmount, WaitOnAnUnmountedImageSaysSoWithoutTalkOfWaiting) {
  write_file(image(), random_bytes(4096, 7));
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  EXPECT_NE(wait.exit_code, 0) << wait.output;
  EXPECT_NE(wait.output.find("is not a mounted clonefs image"), std::string::npos) << wait.output;
  EXPECT_EQ(wait.output.find("while waiting"), std::string::npos) << wait.output;
}

}  // namespace
}  // namespace clonefs::testing
