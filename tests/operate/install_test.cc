// `cmake --install` stays where it is told: every file lands under CMAKE_INSTALL_PREFIX, or
// under DESTDIR + prefix for a staged install, and the installed helper and unit name the
// installed binary (the prefix, never the staging directory). Before, the helper went to /sbin
// whatever the prefix, overwriting the system's helper from a packager's staged build.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <string>

#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

// The files an install puts under its prefix.
const std::set<std::string> kInstalledFiles = {
    "bin/clonefs",
    "sbin/mount.clonefs",
    "lib/clonefs/nbdkit/nbdkit-clonefs-parameters-filter.so",  // http sources' nbdkit filter
    "lib/systemd/system/clonefs@.service",
    "share/man/man1/clonefs.1.gz",
    "share/man/man8/mount.clonefs.8.gz",
    "share/doc/clonefs/copyright",
    "share/doc/clonefs/changelog.gz",
};

// The change time of `path`, or 0 if it does not exist: the system's own helper must not be
// created or rewritten by a test install.
long long change_time_ns(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
}

class InstallTest : public ::testing::Test {
 protected:
  // Runs `cmake --install` with `prefix` (and `destdir`, if any) and returns every path it wrote,
  // as cmake's install manifest lists them.
  std::set<std::string> install(const std::string& prefix, const std::string& destdir) {
    std::string manifest = std::string(CLONEFS_BUILD_DIR) + "/install_manifest.txt";
    ::unlink(manifest.c_str());
    std::string env = destdir.empty() ? "" : "DESTDIR=" + shell_quote(destdir) + " ";
    CommandResult installed = run(env + "cmake --install " + shell_quote(CLONEFS_BUILD_DIR) +
                                  " --prefix " + shell_quote(prefix));
    EXPECT_EQ(installed.exit_code, 0) << installed.output;
    std::set<std::string> written;
    std::ifstream lines(manifest);
    for (std::string line; std::getline(lines, line);) written.insert(line);
    EXPECT_FALSE(written.empty()) << "no install manifest at " << manifest;
    return written;
  }

  // Checks that the manifest lists exactly kInstalledFiles under `prefix` (cmake lists a staged
  // install's files without DESTDIR) and that each file is there under `root` (DESTDIR + prefix).
  void expect_all_under(const std::set<std::string>& written, const std::string& prefix,
                        const std::string& root) {
    std::set<std::string> expected;
    for (const std::string& file : kInstalledFiles) expected.insert(prefix + "/" + file);
    for (const std::string& path : written) {
      EXPECT_EQ(path.rfind(prefix + "/", 0), 0u) << path << " was installed outside " << prefix;
    }
    EXPECT_EQ(written, expected);
    for (const std::string& file : kInstalledFiles) {
      std::string path = root + "/" + file;
      EXPECT_EQ(run("test -f " + shell_quote(path)).exit_code, 0) << path << " is missing";
    }
  }

  void SetUp() override {
    if (run("command -v cmake").exit_code != 0) {
      if (running_in_ci()) FAIL() << "CI must check the install: cmake is missing";
      GTEST_SKIP() << "needs cmake";
    }
    helper_before_ = change_time_ns("/usr/sbin/mount.clonefs");
  }
  void TearDown() override {
    EXPECT_EQ(change_time_ns("/usr/sbin/mount.clonefs"), helper_before_)
        << "the system's /sbin/mount.clonefs was written by a test install";
  }

  TempDir dir_;
  long long helper_before_ = 0;
};

TEST_F(InstallTest, EveryFileLandsUnderThePrefix) {
  std::string prefix = dir_.file("prefix");
  expect_all_under(install(prefix, ""), prefix, prefix);
  CommandResult helper = run("grep -x " + shell_quote("clonefs=" + prefix + "/bin/clonefs") + " " +
                             shell_quote(prefix + "/sbin/mount.clonefs"));
  EXPECT_EQ(helper.exit_code, 0) << "the helper does not run the installed binary";
}

TEST_F(InstallTest, AStagedInstallLandsUnderDestdirAndNamesThePrefix) {
  std::string stage = dir_.file("stage");
  const std::string prefix = "/opt/clonefs-install-test";
  expect_all_under(install(prefix, stage), prefix, stage + prefix);
  EXPECT_NE(run("test -e " + shell_quote(prefix)).exit_code, 0) << prefix << " was written";
  // The staged files name where they will run from, not the staging directory.
  CommandResult helper = run("grep -x " + shell_quote("clonefs=" + prefix + "/bin/clonefs") + " " +
                             shell_quote(stage + prefix + "/sbin/mount.clonefs"));
  EXPECT_EQ(helper.exit_code, 0) << "the staged helper does not name " << prefix << "/bin/clonefs";
  CommandResult unit = run("grep -c " + shell_quote("=" + prefix + "/bin/clonefs ") + " " +
                           shell_quote(stage + prefix + "/lib/systemd/system/clonefs@.service"));
  EXPECT_EQ(unit.output, "2\n") << "ExecStart and ExecStop run the installed binary";
  EXPECT_EQ(run("grep -rl " + shell_quote(stage) + " " + shell_quote(stage + prefix)).output, "")
      << "installed files naming the staging directory";
}

}  // namespace
}  // namespace clonefs::testing
