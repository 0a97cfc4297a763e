// Issue #25, holes 1 and 5, through the real binary as root, with `nobody` (uid 65534) as the
// attacker working in a directory it owns, as the issue reproduced them:
// - a clone nobody made, its destination changed with sqlite3 to a root-owned file: root's mount
//   overwrote that file with nobody's bytes;
// - nobody's file carrying a user.clonefs.metadata xattr: root's `clonefs status FILE` opened
//   whatever metadata it named;
// - metadata with a NULL source_path, image_size 2^62 or -1: `status` aborted or segfaulted.
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mount/mount_fixture.h"
#include "support/crafted_metadata.h"

namespace clonefs::testing {
namespace {

const std::string kAsNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";

class TrustedMetadataTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (run("command -v setpriv && command -v sqlite3").exit_code != 0) {
      if (running_in_ci()) FAIL() << "setpriv (util-linux) or sqlite3 is missing";
      GTEST_SKIP() << "needs setpriv and sqlite3";
    }
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    ASSERT_EQ(run("install -d -o 65534 -g 65534 " + shell_quote(svc())).exit_code, 0);
  }
  std::string svc() const { return dir_.file("svc"); }
  CommandResult as_nobody(const std::string& command) {
    return run(kAsNobody + "sh -c " + shell_quote(command));
  }
  // nobody's clone of its own 4 KiB file, everything in its own directory.
  void nobody_creates_a_clone() {
    CommandResult c = as_nobody(
        "head -c 4096 /dev/urandom > " + shell_quote(svc() + "/src") + " && " +
        clonefs("create --source " + shell_quote(svc() + "/src") + " --dest " +
                shell_quote(svc() + "/dest") + " --metadata " + shell_quote(svc() + "/meta")));
    ASSERT_EQ(c.exit_code, 0) << c.output;
  }
};

TEST_F(TrustedMetadataTest, RootRefusesMetadataAnotherUserControls) {
  nobody_creates_a_clone();
  // The victim: root's own 0600 file, which nobody can neither read nor write.
  const std::string victim = dir_.file("victim");
  write_file(victim, random_bytes(4096, 5));
  ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);
  const std::string before = file_digest(victim);
  CommandResult edit = as_nobody("sqlite3 " + shell_quote(svc() + "/meta") +
                                 " \"UPDATE clone SET destination_path = '" + victim + "'\"");
  ASSERT_EQ(edit.exit_code, 0) << edit.output;

  MountedImage mounted(svc() + "/meta", image(), "--restart-limit 0");
  EXPECT_FALSE(mounted.ok()) << "root mounted nobody's metadata";
  const std::string& said = mounted.result().output;
  EXPECT_NE(said.find("metadata " + svc() + "/meta is not trusted: "), std::string::npos) << said;
  EXPECT_NE(said.find("owner nobody (uid 65534)"), std::string::npos) << said;
  if (mounted.ok()) (void)run("cat " + shell_quote(image()) + " > /dev/null");  // hydrate it
  EXPECT_EQ(file_digest(victim), before) << "root wrote nobody's bytes into its own file";

  // The same for every command that opens metadata.
  for (const std::string& command :
       {"status " + shell_quote(svc() + "/meta"),
        "finalize --metadata " + shell_quote(svc() + "/meta"),
        "create --force --source " + shell_quote(source()) + " --dest " + shell_quote(dest()) +
            " --metadata " + shell_quote(svc() + "/meta")}) {
    write_file(source(), random_bytes(4096, 6));
    CommandResult r = run(clonefs(command));
    EXPECT_EQ(r.exit_code, 1) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("is not trusted"), std::string::npos) << command << "\n" << r.output;
  }
}

TEST_F(TrustedMetadataTest, StatusFollowsNoXattrOfAFileTheCallerDoesNotOwn) {
  write_file(source(), random_bytes(4096, 7));
  create();  // root's clone, in root's directory
  const std::string planted = svc() + "/disk.img";
  // What nobody would do with setfattr on its own file (set here as root, then handed over).
  write_file(planted, {});
  ASSERT_EQ(::setxattr(planted.c_str(), "user.clonefs.metadata", meta().data(), meta().size(), 0),
            0);
  ASSERT_EQ(::chown(planted.c_str(), 65534, 65534), 0);
  CommandResult r = run(clonefs("status " + shell_quote(planted)));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find(meta()), std::string::npos) << "followed nobody's xattr:\n" << r.output;
  // Root's own unmounted image is still followed (see status_json tests for the figures).
  ASSERT_EQ(::chown(planted.c_str(), 0, 0), 0);
  CommandResult own = run(clonefs("status " + shell_quote(planted)));
  EXPECT_EQ(own.exit_code, 0) << own.output;
}

// Each was an abort or a segfault of `clonefs status FILE`.
TEST_F(TrustedMetadataTest, CraftedMetadataIsOneLineAndExitOne) {
  for (const char* sql : {"UPDATE clone SET source_path = NULL",
                          "UPDATE clone SET image_size = 4611686018427387904, source_size = "
                          "4611686018427387904",
                          "UPDATE clone SET image_size = -1"}) {
    ASSERT_TRUE(write_valid_metadata(meta()));
    ASSERT_EQ(run_sql(meta(), kLoosenSchemaSql), "");
    ASSERT_EQ(run_sql(meta(), sql), "");
    CommandResult r = run(clonefs("status " + shell_quote(meta())));
    EXPECT_EQ(r.exit_code, 1) << sql << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("clonefs: metadata " + meta() + " is corrupt: ", 0), 0u) << sql << "\n"
                                                                                      << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << sql << "\n" << r.output;
  }
}

}  // namespace
}  // namespace clonefs::testing
