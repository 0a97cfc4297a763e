// Every CLI error a user will hit: one clear line, a non-zero exit, nothing half-made.
#include <sys/stat.h>

#include <filesystem>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

struct ErrorCase {
  std::string name;
  std::string args;    // after "clonefs "; {src} {dest} {meta} {image} {dir} are substituted
  std::string needle;  // must appear in the output
};

std::string substitute(std::string text, const TempDir& dir) {
  const std::pair<std::string, std::string> vars[] = {{"{src}", dir.file("source.img")},
                                                      {"{dest}", dir.file("dest.img")},
                                                      {"{meta}", dir.file("meta.db")},
                                                      {"{image}", dir.file("image")},
                                                      {"{dir}", dir.path()}};
  for (const auto& [key, value] : vars) {
    for (size_t at; (at = text.find(key)) != std::string::npos;)
      text.replace(at, key.size(), value);
  }
  return text;
}

// Errors that need no mount: the clone exists (created in SetUp) and must stay untouched.
class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_.file("source.img"), random_bytes(4 << 20, 1));
    CommandResult r =
        run(shell_quote(clonefs_binary()) + " create --source " +
            shell_quote(dir_.file("source.img")) + " --dest " + shell_quote(dir_.file("dest.img")) +
            " --metadata " + shell_quote(dir_.file("meta.db")));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::filesystem::create_directory(dir_.file("adir"));
  }
  std::vector<std::string> digests() const {
    return {file_digest(dir_.file("source.img")), file_digest(dir_.file("dest.img")),
            file_digest(dir_.file("meta.db"))};
  }
  TempDir dir_;
};

TEST_F(CliErrors, EachBadInvocationFailsWithOneClearMessageAndWritesNothing) {
  const std::vector<ErrorCase> cases = {
      {"no subcommand", "", "subcommand"},
      {"unknown subcommand", "frobnicate", "frobnicate"},
      {"unknown flag", "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --bogus",
       "--bogus"},
      {"missing source", "create --source {dir}/nope.img --dest {dir}/d2 --metadata {dir}/m2",
       "nope.img"},
      {"source is a directory", "create --source {dir}/adir --dest {dir}/d2 --metadata {dir}/m2",
       "directory"},
      {"existing metadata", "create --source {src} --dest {dir}/d2 --metadata {meta}", "--force"},
      {"region size not a power of two",
       "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --region-size 3000",
       "power of two"},
      {"region size too small",
       "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --region-size 1K", "range"},
      {"region size too big",
       "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --region-size 2G", "range"},
      {"region size garbage",
       "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --region-size 12XB", "12XB"},
      {"region size negative",
       "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --region-size -4K", "-4K"},
      {"region size huge",
       "create --source {src} --dest {dir}/d2 --metadata {dir}/m2 --region-size "
       "99999999999999999999",
       "99999999999999999999"},
      {"missing metadata", "mount --metadata {dir}/nope.db {image}", "nope.db"},
      {"metadata is random bytes", "status {src}", "source.img"},
      {"image is a directory", "mount --metadata {meta} {dir}/adir", "adir"},
      {"image in a missing directory", "mount --metadata {meta} {dir}/nodir/image", "nodir"},
      {"status of nothing", "status {dir}/nothing", "nothing"},
      {"unmount of something not mounted", "unmount {src}", "source.img"},
      {"hydrate of something not mounted", "hydrate {src} --pause", "source.img"},
      {"hydrate rate garbage", "hydrate {image} --rate fast", "fast"},
      {"finalize incomplete", "finalize --metadata {meta}", "missing"},
      {"missing profile", "mount --metadata {meta} {image} --profile {dir}/nope.profile",
       "nope.profile"},
      {"profile not a profile", "mount --metadata {meta} {image} --rate 1M --profile {src}",
       "not a clonefs access profile"},
      {"profile recorded into a missing directory",
       "mount --metadata {meta} {image} --record-profile {dir}/nodir/p", "nodir"},
      {"hydrate --files of something not mounted", "hydrate {src} --files {dir}", "source.img"},
      {"hydrate --profile and --files", "hydrate {image} --profile {src} --files {dir}",
       "excludes"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto before = digests();
    CommandResult r = run(shell_quote(clonefs_binary()) + " " + substitute(c.args, dir_));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(substitute(c.needle, dir_)), std::string::npos) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 3) << "not one clear message:\n"
                                                                     << r.output;
    EXPECT_EQ(digests(), before);
    EXPECT_FALSE(std::filesystem::exists(dir_.file("d2"))) << "half-made destination left behind";
    EXPECT_FALSE(std::filesystem::exists(dir_.file("m2"))) << "half-made metadata left behind";
  }
}

TEST_F(CliErrors, ReadOnlyDestinationIsRefusedAtMount) {
  CLONEFS_REQUIRE_MOUNT_ENVIRONMENT();
  // Root ignores permission bits; the immutable attribute stops even root from writing.
  if (run("chattr +i " + shell_quote(dir_.file("dest.img"))).exit_code != 0) {
    GTEST_SKIP() << "the filesystem under " << dir_.path()
                 << " has no immutable attribute (chattr)";
  }
  auto before = digests();
  CommandResult r = run(shell_quote(clonefs_binary()) + " mount --metadata " +
                        shell_quote(dir_.file("meta.db")) + " " + shell_quote(dir_.file("image")));
  run("chattr -i " + shell_quote(dir_.file("dest.img")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dest.img"), std::string::npos) << r.output;
  EXPECT_EQ(digests(), before);
  EXPECT_FALSE(std::filesystem::exists(dir_.file("image")))
      << "a failed mount left the image file behind";
}

TEST_F(MountTest, MountingTwiceIsRefused) {
  write_file(source(), random_bytes(4 << 20, 1));
  create();
  mount();
  // The same image path is in use, and so is the metadata.
  CommandResult again =
      run(clonefs("mount --metadata " + shell_quote(meta()) + " " + shell_quote(image())));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("image"), std::string::npos) << again.output;
  CommandResult other = run(
      clonefs("mount --metadata " + shell_quote(meta()) + " " + shell_quote(dir_.file("image2"))));
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("in use"), std::string::npos) << other.output;
  EXPECT_EQ(run("grep -c " + shell_quote(dir_.file("image2")) + " /proc/mounts").output, "0\n");
}

TEST_F(MountTest, FuseOptionsAreHonouredOrRefusedByTheMountCommand) {
  write_file(source(), random_bytes(4 << 20, 3));
  create();
  // libfuse refuses a session whose init() does not repeat -o max_read: the daemon must.
  mount("--no-hydration -o max_read=131072");
  CommandResult read = run(clonefs("status " + shell_quote(image())) + " && cmp " +
                           shell_quote(image()) + " " + shell_quote(source()));
  EXPECT_EQ(read.exit_code, 0) << read.output;
  unmount();
  // An option libfuse rejects fails the mount command itself, not the daemon later.
  CommandResult bad = run(clonefs("mount --metadata " + shell_quote(meta()) + " " +
                                  shell_quote(image()) + " -o no_such_option"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("no_such_option"), std::string::npos) << bad.output;
  EXPECT_EQ(run("grep -c " + shell_quote(image()) + " /proc/mounts").output, "0\n");
}

TEST_F(MountTest, ControlChannelRefusesOtherUsers) {
  write_file(source(), random_bytes(4 << 20, 2));
  create();
  // allow_other lets another user open the image at all; the daemon must still refuse control.
  mount("--no-hydration -o allow_other");
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  const std::string as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  CommandResult resume = run(as_nobody + clonefs("hydrate " + shell_quote(image()) + " --resume"));
  EXPECT_NE(resume.exit_code, 0);
  EXPECT_NE(resume.output.find("only root or the user who mounted"), std::string::npos)
      << resume.output;
  CommandResult status = run(as_nobody + clonefs("status " + shell_quote(image())));
  EXPECT_NE(status.exit_code, 0);
  EXPECT_NE(status.output.find("only root or the user who mounted"), std::string::npos)
      << status.output;
  // Root still controls it, and nobody's request changed nothing.
  CommandResult mine = run(clonefs("status --json " + shell_quote(image())));
  ASSERT_EQ(mine.exit_code, 0) << mine.output;
  EXPECT_NE(mine.output.find("\"paused\": true"), std::string::npos) << mine.output;
}

}  // namespace
}  // namespace clonefs::testing
