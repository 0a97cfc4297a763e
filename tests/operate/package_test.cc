// `cpack -G DEB` from the build tree: the package holds the binary, the mount helper where
// mount(8) looks, the unit template and the man pages, all naming /usr/bin/clonefs, and depends
// on the libraries dpkg-shlibdeps found plus fuse3.
#include <gtest/gtest.h>

#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"cpack", "dpkg-deb", "dpkg-shlibdeps"}) {
      if (run(std::string("command -v ") + tool).exit_code != 0) {
        if (running_in_ci()) FAIL() << "CI must build the package: " << tool << " is missing";
        GTEST_SKIP() << "needs " << tool << " (cmake, dpkg, dpkg-dev)";
      }
    }
  }
  TempDir dir_;
};

TEST_F(PackageTest, DebHoldsEverythingWithItsDependencies) {
  CommandResult built =
      run("cd " + shell_quote(dir_.path()) + " && cpack -G DEB -B " + shell_quote(dir_.path()) +
          " --config " + shell_quote(std::string(CLONEFS_BUILD_DIR) + "/CPackConfig.cmake"));
  ASSERT_EQ(built.exit_code, 0) << built.output;
  CommandResult found = run("ls " + shell_quote(dir_.path()) + "/clonefs_*.deb");
  ASSERT_EQ(found.exit_code, 0) << found.output;
  std::string deb = found.output.substr(0, found.output.find('\n'));

  CommandResult info = run("dpkg-deb -I " + shell_quote(deb));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("Package: clonefs"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("Version: " CLONEFS_VERSION), std::string::npos) << info.output;
  CommandResult depends = run("dpkg-deb -f " + shell_quote(deb) + " Depends");
  for (const char* dependency : {"fuse3", "libfuse3-3", "libsqlite3-0", "libsystemd0", "libblkid1",
                                 "libmount1", "libstdc++6", "libc6"}) {
    EXPECT_NE(depends.output.find(dependency), std::string::npos)
        << dependency << " missing from Depends: " << depends.output;
  }

  CommandResult contents = run("dpkg-deb -c " + shell_quote(deb));
  ASSERT_EQ(contents.exit_code, 0) << contents.output;
  for (const char* path :
       {" ./usr/bin/clonefs\n", " ./sbin/mount.clonefs\n",
        " ./usr/lib/systemd/system/clonefs@.service\n", " ./usr/share/man/man1/clonefs.1.gz\n",
        " ./usr/share/man/man8/mount.clonefs.8.gz\n"}) {
    EXPECT_NE(contents.output.find(path), std::string::npos) << path << "\n" << contents.output;
  }
  EXPECT_NE(contents.output.find("-rwxr-xr-x root/root"), std::string::npos) << contents.output;

  // The installed files name the installed binary, not the build tree.
  std::string root = dir_.file("root");
  ASSERT_EQ(run("dpkg-deb -x " + shell_quote(deb) + " " + shell_quote(root)).exit_code, 0);
  CommandResult helper =
      run("grep -x 'clonefs=/usr/bin/clonefs' " + shell_quote(root) + "/sbin/mount.clonefs");
  EXPECT_EQ(helper.exit_code, 0) << "the helper does not run /usr/bin/clonefs";
  CommandResult unit = run("grep -c '=/usr/bin/clonefs ' " + shell_quote(root) +
                           "/usr/lib/systemd/system/clonefs@.service");
  EXPECT_EQ(unit.output, "2\n") << "ExecStart and ExecStop run /usr/bin/clonefs";
  CommandResult leaks = run("grep -rl " + shell_quote(CLONEFS_BUILD_DIR) + " " + shell_quote(root) +
                            "/sbin " + shell_quote(root) + "/usr/lib");
  EXPECT_EQ(leaks.output, "") << "files naming the build directory";
  CommandResult version = run(shell_quote(root) + "/usr/bin/clonefs --version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
}

}  // namespace
}  // namespace clonefs::testing
