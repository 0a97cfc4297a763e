// docs/SEMANTICS.md "Operations on the image" (permissions, ioctl): another user against root's
// mount. With `-o allow_other` the kernel must enforce the image's mode (default_permissions) and
// only the owner or root may change it; without allow_other FUSE refuses other users everything.
// Either way the image's bytes and mode stay as they were.
#include <sys/stat.h>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kSize = 4 << 20;
constexpr const char* kDenied = "Permission denied";              // EACCES
constexpr const char* kNotPermitted = "Operation not permitted";  // EPERM
constexpr const char* kNoControl = "only root or the user who mounted";

class OtherUser : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (run("command -v setpriv").exit_code != 0) {
      if (running_in_ci())
        FAIL() << "CI must run permission tests: setpriv (util-linux) is missing";
      GTEST_SKIP() << "needs setpriv (util-linux) to run commands as another user";
    }
    // The other user has to reach the image at all.
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    write_file(source(), random_bytes(kSize, 31));
    ASSERT_EQ(::chmod(source().c_str(), 0644), 0);
    create();
  }
  // `command` through sh as uid/gid 65534 with no supplementary groups.
  CommandResult as_nobody(const std::string& command) const {
    return run("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c " + shell_quote(command));
  }
  // Must fail, saying `why`.
  void expect_refused(const std::string& what, const std::string& command, const std::string& why) {
    CommandResult r = as_nobody(command);
    EXPECT_NE(r.exit_code, 0) << what << " was allowed: " << r.output;
    EXPECT_NE(r.output.find(why), std::string::npos)
        << what << ": expected '" << why << "' in: " << r.output;
  }
  mode_t image_mode() const {
    struct stat st {};
    EXPECT_EQ(::stat(image().c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  void expect_image_unchanged() {
    EXPECT_EQ(image_mode(), 0644);
    CommandResult same = run("cmp " + shell_quote(image()) + " " + shell_quote(source()));
    EXPECT_EQ(same.exit_code, 0) << "the image no longer reads as the source: " << same.output;
  }
  std::string img() const { return shell_quote(image()); }
  std::string same_size() const { return std::to_string(kSize); }
};

TEST_F(OtherUser, WithAllowOtherTheKernelEnforcesTheImageMode) {
  mount("-o allow_other");
  ASSERT_EQ(::chmod(image().c_str(), 0644), 0);
  CommandResult read = as_nobody("dd if=" + img() + " of=/dev/null bs=4096 count=4 status=none");
  EXPECT_EQ(read.exit_code, 0) << "mode 0644 gives others read: " << read.output;

  expect_refused("open O_RDWR", "exec 3<>" + img(), kDenied);
  expect_refused("write", "printf garbage | dd of=" + img() + " conv=notrunc status=none", kDenied);
  expect_refused("truncate", "truncate -s " + same_size() + " " + img(), kDenied);
  expect_refused("chmod", "chmod 0777 " + img(), kNotPermitted);
  expect_refused("chown", "chown 65534:65534 " + img(), kNotPermitted);
  // Setting times is the owner's (EPERM); touch reports its failed open (EACCES) instead.
  expect_refused("touch", "touch -d 2001-01-01 " + img(), "cannot touch");
  expect_refused("status", shell_quote(clonefs_binary()) + " status " + img(), kNoControl);
  expect_refused("hydrate --pause",
                 shell_quote(clonefs_binary()) + " hydrate " + img() + " --pause", kNoControl);

  // A mode without read for others takes reading away too.
  ASSERT_EQ(::chmod(image().c_str(), 0600), 0);
  expect_refused("read of a 0600 image",
                 "dd if=" + img() + " of=/dev/null bs=4096 count=1 status=none", kDenied);
  ASSERT_EQ(::chmod(image().c_str(), 0644), 0);

  expect_image_unchanged();
  CommandResult mine = run(clonefs("status --json " + img()));
  ASSERT_EQ(mine.exit_code, 0) << mine.output;
  EXPECT_NE(mine.output.find("\"paused\": false"), std::string::npos)
      << "the other user paused hydration: " << mine.output;
}

TEST_F(OtherUser, TheOwnerWhoIsNotTheMounterMayChangeTheMode) {
  mount("--no-hydration -o allow_other");
  ASSERT_EQ(::chown(image().c_str(), 65534, 65534), 0);
  CommandResult chmod = as_nobody("chmod 0600 " + img());
  EXPECT_EQ(chmod.exit_code, 0) << "the owner could not chmod: " << chmod.output;
  EXPECT_EQ(image_mode(), 0600);
  // Giving the file away is root's alone, even for its owner.
  expect_refused("chown by the owner", "chown 0 " + img(), kNotPermitted);
  ASSERT_EQ(::chown(image().c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(image().c_str(), 0644), 0);
  expect_image_unchanged();
}

TEST_F(OtherUser, WithoutAllowOtherEverythingIsRefused) {
  mount("--no-hydration");
  ASSERT_EQ(::chmod(image().c_str(), 0644), 0);
  expect_refused("stat", "stat " + img(), kDenied);
  expect_refused("read", "dd if=" + img() + " of=/dev/null bs=4096 count=1 status=none", kDenied);
  expect_refused("open O_RDWR", "exec 3<>" + img(), kDenied);
  expect_refused("write", "printf garbage | dd of=" + img() + " conv=notrunc status=none", kDenied);
  expect_refused("truncate", "truncate -s " + same_size() + " " + img(), kDenied);
  expect_refused("chmod", "chmod 0777 " + img(), kDenied);
  expect_refused("chown", "chown 65534:65534 " + img(), kDenied);
  // status stats IMAGE first to tell an image from a metadata file: FUSE refuses that already.
  expect_refused("status", shell_quote(clonefs_binary()) + " status " + img(), kDenied);
  expect_refused("hydrate --resume",
                 shell_quote(clonefs_binary()) + " hydrate " + img() + " --resume", kNoControl);
  expect_image_unchanged();
  CommandResult mine = run(clonefs("status --json " + img()));
  ASSERT_EQ(mine.exit_code, 0) << mine.output;
  EXPECT_NE(mine.output.find("\"paused\": true"), std::string::npos)
      << "the other user resumed hydration: " << mine.output;
}

}  // namespace
}  // namespace clonefs::testing
