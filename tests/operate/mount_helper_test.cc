// mount(8) and fstab: `mount -t clonefs META IMAGE -o OPTIONS` runs the build's mount.clonefs
// (found by mount(8) in /sbin, through HelperNamespace), which runs `clonefs mount`; `umount
// IMAGE` leaves the metadata as `clonefs unmount` does; an fstab line mounts with `mount -a`.
#include <gtest/gtest.h>

#include "mount/mount_fixture.h"
#include "operate/helper_namespace.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kRegion = 16 << 10;

class MountHelperTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped()) return;
    write_file(source(), random_bytes(8 << 20, 16));
    create();
    ns_ = std::make_unique<HelperNamespace>(CLONEFS_OPERATE_DIR, dir_.path());
    ASSERT_EQ(ns_->problem(), "");
  }
  void TearDown() override { ns_.reset(); }

  CommandResult inside(const std::string& command) { return ns_->run_inside(command); }
  CloneStatus status_inside(const std::string& target) {
    CommandResult r = inside(clonefs("status --json " + shell_quote(target)));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto parsed = parse_status(r.output, "status --json " + target);
    EXPECT_TRUE(parsed.is_ok()) << r.output;
    return parsed.is_ok() ? std::move(*parsed) : CloneStatus{};
  }
  // Writes 3 regions' worth at region 5 (no fsync: the unmount's final commit must cover them).
  void write_three_regions() {
    CommandResult r = inside("dd if=/dev/zero bs=" + std::to_string(kRegion) +
                             " count=3 seek=5 conv=notrunc status=none of=" + shell_quote(image()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // Mounts stacked on IMAGE in the namespace (other mounts on the machine are none of ours).
  int mounts_at_image() {
    CommandResult r =
        inside("awk -v t=" + shell_quote(image()) + " '$5 == t' /proc/self/mountinfo | wc -l");
    return std::stoi(r.output);
  }
  // The committed state, once the daemon has exited.
  CloneStatus committed() {
    EXPECT_TRUE(wait_until_released(meta())) << "the daemon still holds " << meta();
    return status_json(meta());
  }

  std::unique_ptr<HelperNamespace> ns_;
};

TEST_F(MountHelperTest, MountWithOptionsThenUmountCommitsLikeClonefsUnmount) {
  std::string log = dir_.file("helper.log");
  std::string metrics = dir_.file("clone.prom");
  CommandResult m = inside("mount -t clonefs " + shell_quote(meta()) + " " + shell_quote(image()) +
                           " -o defaults,nofail,_netdev,x-systemd.requires=x.service,"
                           "no_hydration,rate=1M,threshold=8,batch=4,allow_other,nosuid,"
                           "writeback_cache,readahead=256,log_file=" +
                           log + ",metrics_file=" + metrics);
  ASSERT_EQ(m.exit_code, 0) << m.output;
  EXPECT_EQ(run("grep -q 'writeback cache on' " + shell_quote(log)).exit_code, 0);
  CommandResult readahead =
      inside("cat /sys/class/bdi/$(mountpoint -d " + shell_quote(image()) + ")/read_ahead_kb");
  EXPECT_EQ(readahead.output, "256\n") << "readahead=256 did not reach the mount";
  CloneStatus live = status_inside(image());
  ASSERT_TRUE(live.hydration);
  EXPECT_TRUE(live.hydration->controls.paused);
  EXPECT_EQ(live.hydration->controls.rate_limit, 1u << 20);
  EXPECT_EQ(live.hydration->controls.threshold, 8u);
  EXPECT_EQ(live.hydration->controls.batch, 4u);
  // The mount table names the metadata as the source (so mount -a knows the line is mounted),
  // and carries the FUSE options.
  CommandResult table = inside("findmnt -n -o SOURCE,FSTYPE,OPTIONS " + shell_quote(image()));
  EXPECT_NE(table.output.find(meta() + " fuse.clonefs"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("allow_other"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("nosuid"), std::string::npos) << table.output;
  EXPECT_EQ(run("test -s " + shell_quote(log)).exit_code, 0) << "no log at " << log;
  EXPECT_EQ(run("grep -q clonefs_mounted " + shell_quote(metrics)).exit_code, 0);
  CommandResult cmp = inside("cmp " + shell_quote(source()) + " " + shell_quote(image()));
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;

  write_three_regions();
  CommandResult u = inside("umount " + shell_quote(image()));
  ASSERT_EQ(u.exit_code, 0) << u.output;
  CloneStatus after = committed();
  EXPECT_EQ(after.regions_valid, 3u) << "umount's final commit is missing regions";
  EXPECT_EQ(after.metadata_mode, "unmounted");
  EXPECT_FALSE(std::filesystem::exists(image())) << "the mount created IMAGE and removes it";
}

// The same writes, unmounted with `clonefs unmount`: the committed state umount(8) must match.
TEST_F(MountHelperTest, ClonefsUnmountCommitsTheSame) {
  CommandResult m = inside("mount -t clonefs -o no_hydration " + shell_quote(meta()) + " " +
                           shell_quote(image()));
  ASSERT_EQ(m.exit_code, 0) << m.output;
  write_three_regions();
  CommandResult u = inside(clonefs("unmount " + shell_quote(image())));
  ASSERT_EQ(u.exit_code, 0) << u.output;
  EXPECT_EQ(committed().regions_valid, 3u);
}

// umount(8) returns before the daemon's final commit, and whoever unmounts may send SIGTERM
// next (systemd stopping units, a shutdown script). The commit must not be cut short: every
// region written before the umount is committed.
TEST_F(MountHelperTest, SigtermRightAfterUmountDoesNotCutTheFinalCommitShort) {
  ASSERT_EQ(
      inside("mount -t clonefs -o no_hydration " + shell_quote(meta()) + " " + shell_quote(image()))
          .exit_code,
      0);
  int pid = status_inside(image()).pid.value_or(-1);
  ASSERT_GT(pid, 0);
  // Every region of the 8 MiB image, unflushed: the final commit syncs them all.
  ASSERT_EQ(inside("head -c 8388608 /dev/urandom | dd of=" + shell_quote(image()) +
                   " bs=1M iflag=fullblock conv=notrunc status=none")
                .exit_code,
            0);
  CommandResult u =
      inside("umount " + shell_quote(image()) + " && kill -TERM " + std::to_string(pid));
  ASSERT_EQ(u.exit_code, 0) << u.output;
  CloneStatus after = committed();
  EXPECT_EQ(after.regions_valid, after.regions_total) << "the final commit was cut short";
}

TEST_F(MountHelperTest, DataWrittenBeforeUmountReadsBackAfterRemount) {
  ASSERT_EQ(
      inside("mount -t clonefs -o no_hydration " + shell_quote(meta()) + " " + shell_quote(image()))
          .exit_code,
      0);
  ASSERT_EQ(inside("printf clonefs-was-here | dd of=" + shell_quote(image()) +
                   " bs=1 seek=100000 conv=notrunc status=none")
                .exit_code,
            0);
  ASSERT_EQ(inside("umount " + shell_quote(image())).exit_code, 0);
  ASSERT_TRUE(wait_until_released(meta()));
  ASSERT_EQ(
      inside("mount -t clonefs -o no_hydration " + shell_quote(meta()) + " " + shell_quote(image()))
          .exit_code,
      0);
  CommandResult r =
      inside("dd if=" + shell_quote(image()) + " bs=1 skip=100000 count=16 status=none");
  EXPECT_EQ(r.output, "clonefs-was-here") << r.output;
}

TEST_F(MountHelperTest, FstabLineMountsWithMountAllAndOnlyOnce) {
  std::string fstab = dir_.file("fstab");
  write_file(fstab, {});
  std::string line = meta() + " " + image() + " clonefs defaults,nofail,no_hydration 0 0\n";
  ASSERT_EQ(run("printf '%s' " + shell_quote("# a comment\n" + line) + " > " + shell_quote(fstab))
                .exit_code,
            0);
  CommandResult a = inside("mount -a --fstab " + shell_quote(fstab));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_TRUE(status_inside(image()).mounted);
  // Again: the line is seen as mounted (source and target match the mount table), not remounted.
  CommandResult again = inside("mount -a --fstab " + shell_quote(fstab));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(mounts_at_image(), 1);
  CommandResult u = inside("umount " + shell_quote(image()));
  ASSERT_EQ(u.exit_code, 0) << u.output;
  EXPECT_TRUE(wait_until_released(meta()));
}

TEST_F(MountHelperTest, UnknownOptionIsRefusedNamingItAndNothingIsMounted) {
  CommandResult m = inside("mount -t clonefs -o no_hydration,bogus=1 " + shell_quote(meta()) + " " +
                           shell_quote(image()));
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE(m.output.find("unknown option 'bogus=1'"), std::string::npos) << m.output;
  EXPECT_EQ(mounts_at_image(), 0);
  EXPECT_FALSE(std::filesystem::exists(image()));
  // mount -s (sloppy): the unknown option is ignored, with a warning.
  CommandResult sloppy =
      inside("mount -s -t clonefs -o bogus=1 " + shell_quote(meta()) + " " + shell_quote(image()));
  ASSERT_EQ(sloppy.exit_code, 0) << sloppy.output;
  EXPECT_NE(sloppy.output.find("ignoring unknown option 'bogus=1'"), std::string::npos)
      << sloppy.output;
}

TEST_F(MountHelperTest, ClonefsErrorsReachTheUser) {
  CommandResult m =
      inside("mount -t clonefs -o rate=fast " + shell_quote(meta()) + " " + shell_quote(image()));
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE(m.output.find("fast"), std::string::npos) << m.output;
  EXPECT_EQ(mounts_at_image(), 0);
}

}  // namespace
}  // namespace clonefs::testing
