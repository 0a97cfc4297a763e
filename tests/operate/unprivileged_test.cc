// A laptop user without root (uid 65534 through setpriv, no supplementary groups): with
// /dev/fuse usable and fusermount3 installed, the whole life of a clone works — create, mount,
// read and write the image (what qemu would), status, hydrate, unmount, finalize. Root is
// refused the user's mount unless it was mounted with allow_other, and allow_other needs
// user_allow_other in /etc/fuse.conf.
//
// /dev/fuse is mode 0666 on a Debian laptop (udev), 0600 on machines without udev such as this
// one: the test runs in a private mount namespace (HelperNamespace) where a 0666 node of the same
// device is bound over /dev/fuse, as a laptop has it; the machine's /dev/fuse is left alone.
#include <signal.h>

#include <chrono>
#include <regex>
#include <thread>

#include "mount/mount_fixture.h"
#include "operate/helper_namespace.h"

namespace clonefs::testing {
namespace {

const std::string kAsUser = "setpriv --reuid=65534 --regid=65534 --clear-groups ";

class UnprivilegedTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped()) return;
    if (run("command -v setpriv").exit_code != 0) {
      if (running_in_ci()) FAIL() << "setpriv (util-linux) is missing";
      GTEST_SKIP() << "needs setpriv";
    }
    std::string fuse = dir_.file("fuse");
    ASSERT_EQ(run("mknod -m 0666 " + shell_quote(fuse) + " c 10 229").exit_code, 0);
    ns_ = std::make_unique<HelperNamespace>(CLONEFS_OPERATE_DIR, dir_.path(),
                                            "mount --bind " + shell_quote(fuse) + " /dev/fuse");
    ASSERT_EQ(ns_->problem(), "");
    // The user's own directory, reachable through the test's.
    ASSERT_EQ(run("chmod 755 " + shell_quote(dir_.path()) + " && install -d -o 65534 -g 65534 " +
                  shell_quote(home()))
                  .exit_code,
              0);
    write_file(source(), random_bytes(4 << 20, 99));
    ASSERT_EQ(run("chmod 644 " + shell_quote(source())).exit_code, 0);
  }
  void TearDown() override {
    ns_.reset();  // unmounts the user's mount if the test left it
    if (daemon_pid_ > 0) {
      for (int i = 0; i < 300 && ::kill(daemon_pid_, 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ::kill(daemon_pid_, SIGKILL);
    }
  }
  std::string home() const { return dir_.file("home"); }
  std::string user_image() const { return home() + "/dev.img"; }
  std::string user_meta() const { return home() + "/dev.clonefs"; }
  CommandResult as_user(const std::string& command) {
    return ns_->run_inside(kAsUser + "sh -c " + shell_quote(command));
  }
  CommandResult as_root(const std::string& command) { return ns_->run_inside(command); }
  CommandResult user_mount(const std::string& flags = "") {
    CommandResult r = as_user(clonefs("mount --metadata " + shell_quote(user_meta()) + " " +
                                      shell_quote(user_image()) + " " + flags));
    std::smatch m;
    if (std::regex_search(r.output, m, std::regex(R"(daemon pid (\d+))")))
      daemon_pid_ = std::stoi(m[1]);
    return r;
  }

  std::unique_ptr<HelperNamespace> ns_;
  int daemon_pid_ = -1;
};

TEST_F(UnprivilegedTest, WholeLifeOfACloneWithoutRoot) {
  CommandResult c = as_user(clonefs("create --source " + shell_quote(source()) + " --dest " +
                                    shell_quote(home() + "/dev.raw") + " --metadata " +
                                    shell_quote(user_meta())));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  CommandResult m = user_mount("--no-hydration");
  ASSERT_EQ(m.exit_code, 0) << m.output;
  CommandResult table = as_root("findmnt -n -o OPTIONS " + shell_quote(user_image()));
  EXPECT_NE(table.output.find("user_id=65534"), std::string::npos) << table.output;

  // What qemu would do as the user: read the disk, write and flush it.
  EXPECT_EQ(as_user("cmp " + shell_quote(source()) + " " + shell_quote(user_image())).exit_code, 0);
  CommandResult w = as_user("dd if=/dev/zero of=" + shell_quote(user_image()) +
                            " bs=64K count=2 conv=notrunc,fsync status=none");
  EXPECT_EQ(w.exit_code, 0) << w.output;

  // Root is refused: the mount has no allow_other.
  CommandResult root_reads = as_root("stat " + shell_quote(user_image()));
  EXPECT_NE(root_reads.exit_code, 0);
  EXPECT_NE(root_reads.output.find("Permission denied"), std::string::npos) << root_reads.output;

  CommandResult s = as_user(clonefs("status " + shell_quote(user_image())));
  EXPECT_EQ(s.exit_code, 0) << s.output;
  CommandResult h = as_user(clonefs("hydrate " + shell_quote(user_image()) + " --resume --wait"));
  EXPECT_EQ(h.exit_code, 0) << h.output;
  CommandResult u = as_user(clonefs("unmount " + shell_quote(user_image())));
  ASSERT_EQ(u.exit_code, 0) << u.output;
  daemon_pid_ = -1;
  CommandResult f = as_user(clonefs("finalize --metadata " + shell_quote(user_meta())));
  EXPECT_EQ(f.exit_code, 0) << f.output;
  // The first 128 KiB are the zeros written, the rest the source's bytes.
  CommandResult rest =
      run("cmp -i 131072 " + shell_quote(source()) + " " + shell_quote(home() + "/dev.raw"));
  EXPECT_EQ(rest.exit_code, 0) << rest.output;
}

TEST_F(UnprivilegedTest, AllowOtherNeedsUserAllowOtherInFuseConf) {
  if (run("grep -qs '^[[:space:]]*user_allow_other' /etc/fuse.conf").exit_code == 0)
    GTEST_SKIP() << "/etc/fuse.conf allows user_allow_other here (the machine's, left alone)";
  ASSERT_EQ(
      as_user(clonefs("create --source " + shell_quote(source()) + " --dest " +
                      shell_quote(home() + "/dev.raw") + " --metadata " + shell_quote(user_meta())))
          .exit_code,
      0);
  CommandResult m = user_mount("-o allow_other");
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE(m.output.find("user_allow_other"), std::string::npos) << m.output;
  EXPECT_EQ(as_root("findmnt " + shell_quote(user_image())).exit_code, 1) << "mounted anyway";
}

}  // namespace
}  // namespace clonefs::testing
