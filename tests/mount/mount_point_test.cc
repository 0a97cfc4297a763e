// An IMAGE that is already a mount point is refused, whatever characters its path holds (the
// kernel's mount table escapes spaces, tabs and backslashes; libmount reads it back).
#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

TEST_F(MountTest, AnImageAlreadyMountedIsRefusedEvenWithSpacesInItsPath) {
  write_file(source(), random_bytes(1 << 20, 3));
  const std::string image = dir_.file("my image\\with odd name");
  const std::string meta2 = dir_.file("meta2.db");
  create();
  CommandResult second =
      run(clonefs("create --source " + shell_quote(source()) + " --dest " +
                  shell_quote(dir_.file("dest2.img")) + " --metadata " + shell_quote(meta2)));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  MountedImage first(meta(), image, "--no-hydration");
  ASSERT_TRUE(first.ok()) << first.result().output;
  MountedImage again(meta2, image, "--no-hydration");
  EXPECT_FALSE(again.ok()) << "a second clone was mounted over a mounted image";
  EXPECT_NE(again.result().output.find("already a mount point"), std::string::npos)
      << again.result().output;
}

}  // namespace
}  // namespace clonefs::testing
