// `cpack -G DEB` from the build tree: the package holds the binary, the mount helper where
// mount(8) looks (/usr/sbin, which is /sbin on merged /usr), the unit template, the man pages,
// the copyright file and the changelog, all naming /usr/bin/clonefs; it depends on the libraries
// dpkg-shlibdeps found plus fuse3, and lintian finds no error in it.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

class PackageTest : public ::testing::Test {
 protected:
  // Builds the package into the test's directory and returns its path ("" on failure).
  std::string build_package() {
    CommandResult built =
        run("cd " + shell_quote(dir_.path()) + " && cpack -G DEB -B " + shell_quote(dir_.path()) +
            " --config " + shell_quote(std::string(CLONEFS_BUILD_DIR) + "/CPackConfig.cmake"));
    EXPECT_EQ(built.exit_code, 0) << built.output;
    CommandResult found = run("ls " + shell_quote(dir_.path()) + "/clonefs_*.deb");
    EXPECT_EQ(found.exit_code, 0) << found.output;
    if (built.exit_code != 0 || found.exit_code != 0) return "";
    return found.output.substr(0, found.output.find('\n'));
  }
  void SetUp() override {
    for (const char* tool : {"cpack", "dpkg-deb", "dpkg-shlibdeps", "lintian"}) {
      if (run(std::string("command -v ") + tool).exit_code != 0) {
        if (running_in_ci()) FAIL() << "CI must build the package: " << tool << " is missing";
        GTEST_SKIP() << "needs " << tool << " (cmake, dpkg, dpkg-dev, lintian)";
      }
    }
  }
  TempDir dir_;
};

TEST_F(PackageTest, DebHoldsEverythingWithItsDependencies) {
  std::string deb = build_package();
  ASSERT_NE(deb, "");

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
       {" ./usr/bin/clonefs\n", " ./usr/sbin/mount.clonefs\n",
        " ./usr/lib/systemd/system/clonefs@.service\n", " ./usr/share/man/man1/clonefs.1.gz\n",
        " ./usr/share/man/man8/mount.clonefs.8.gz\n", " ./usr/share/doc/clonefs/copyright\n",
        " ./usr/share/doc/clonefs/changelog.gz\n"}) {
    EXPECT_NE(contents.output.find(path), std::string::npos) << path << "\n" << contents.output;
  }
  EXPECT_NE(contents.output.find("-rwxr-xr-x root/root"), std::string::npos) << contents.output;

  // The installed files name the installed binary, not the build tree.
  std::string root = dir_.file("root");
  ASSERT_EQ(run("dpkg-deb -x " + shell_quote(deb) + " " + shell_quote(root)).exit_code, 0);
  EXPECT_NE(run("test -e " + shell_quote(root) + "/sbin").exit_code, 0)
      << "the package ships files under /sbin, a merged-/usr alias of /usr/sbin";
  CommandResult helper =
      run("grep -x 'clonefs=/usr/bin/clonefs' " + shell_quote(root) + "/usr/sbin/mount.clonefs");
  EXPECT_EQ(helper.exit_code, 0) << "the helper does not run /usr/bin/clonefs";
  CommandResult unit = run("grep -c '=/usr/bin/clonefs ' " + shell_quote(root) +
                           "/usr/lib/systemd/system/clonefs@.service");
  EXPECT_EQ(unit.output, "2\n") << "ExecStart and ExecStop run /usr/bin/clonefs";
  CommandResult leaks = run("grep -rl " + shell_quote(CLONEFS_BUILD_DIR) + " " + shell_quote(root) +
                            "/usr/sbin " + shell_quote(root) + "/usr/lib");
  EXPECT_EQ(leaks.output, "") << "files naming the build directory";
  CommandResult version = run(shell_quote(root) + "/usr/bin/clonefs --version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
}

// What lintian may still say, each with the reason it is left. Any error, and any warning not
// listed here, fails the test.
const std::map<std::string, std::string>& explained_lintian_warnings() {
  static const std::map<std::string, std::string> warnings = {};
  return warnings;
}

TEST_F(PackageTest, LintianFindsNoErrorAndEveryWarningIsExplained) {
  std::string deb = build_package();
  ASSERT_NE(deb, "");
  // Run as root here: lintian says so on stderr, which is not a finding.
  CommandResult lint = run("lintian --no-tag-display-limit " + shell_quote(deb) + " 2>/dev/null");
  std::istringstream lines(lint.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("E: ", 0) == 0) ADD_FAILURE() << "lintian error: " << line;
    if (line.rfind("W: ", 0) != 0) continue;
    // "W: clonefs: TAG [context]"
    std::istringstream words(line.substr(3));
    std::string package, tag;
    words >> package >> tag;
    EXPECT_TRUE(explained_lintian_warnings().count(tag)) << "unexplained lintian warning: " << line;
  }
  EXPECT_NE(lint.exit_code, 127) << lint.output;
}

}  // namespace
}  // namespace clonefs::testing
