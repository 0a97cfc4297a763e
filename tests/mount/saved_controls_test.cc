// Issue #18: hydration controls given at mount apply from the first copy, and controls changed at
// runtime survive a remount (a clone hydrating at --rate 5M came back unlimited); status of an
// unmounted clone shows what the next mount starts with.
#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class SavedControls : public MountTest {
 protected:
  // The controls as the live status reports them (in the hydration object): "none" offline.
  std::string live_controls(const std::string& target) {
    CloneStatus s = status_json(target);
    return s.hydration ? text(s.hydration->controls) : "none";
  }
  // The controls saved for the next mount, as an offline status reports them.
  std::string saved_controls(const std::string& target) {
    return text(status_json(target).hydration_settings);
  }
  static std::string text(const StatusControls& c) {
    return "paused=" + std::to_string(c.paused) + " threshold=" + std::to_string(c.threshold) +
           " batch=" + std::to_string(c.batch) + " rate=" + std::to_string(c.rate_limit);
  }
};

TEST_F(SavedControls, ControlsGivenAtMountOrAtRuntimeSurviveARemount) {
  write_file(source(), random_bytes(64 * kMiB, 61));
  create("--region-size 64K");
  // A clone no mount has steered: the defaults, offline too.
  EXPECT_EQ(saved_controls(meta()), "paused=0 threshold=64 batch=16 rate=0");

  mount("--rate 5M --threshold 8 --batch 4");
  EXPECT_EQ(live_controls(image()), "paused=0 threshold=8 batch=4 rate=5242880");
  unmount();
  EXPECT_EQ(saved_controls(meta()), "paused=0 threshold=8 batch=4 rate=5242880");

  mount();
  EXPECT_EQ(live_controls(image()), "paused=0 threshold=8 batch=4 rate=5242880")
      << "the controls given at the last mount were forgotten";
  CommandResult steer = run(clonefs("hydrate " + shell_quote(image()) + " --rate 7M --pause"));
  ASSERT_EQ(steer.exit_code, 0) << steer.output;
  unmount();  // pauses hydration for its final commit: that pause is not the user's
  EXPECT_EQ(saved_controls(meta()), "paused=1 threshold=8 batch=4 rate=7340032");

  mount();
  EXPECT_EQ(live_controls(image()), "paused=1 threshold=8 batch=4 rate=7340032")
      << "the controls set with 'clonefs hydrate' were forgotten";
  unmount();

  // A flag at mount overrides what was saved, and is saved in turn.
  mount("--hydration --rate 0 --batch 16");
  EXPECT_EQ(live_controls(image()), "paused=0 threshold=8 batch=16 rate=0");
  unmount();
  mount("--no-hydration");
  unmount();
  EXPECT_EQ(saved_controls(meta()), "paused=1 threshold=8 batch=16 rate=0");
  CommandResult table = run(clonefs("status " + shell_quote(meta())));
  EXPECT_NE(table.output.find("paused"), std::string::npos) << table.output;
}

TEST_F(SavedControls, AnUnpausedCloneStaysUnpausedAcrossAnUnmount) {
  write_file(source(), random_bytes(4 * kMiB, 62));
  create();
  mount("--rate 1M");
  unmount();
  EXPECT_EQ(saved_controls(meta()), "paused=0 threshold=64 batch=16 rate=1048576");
}

TEST_F(SavedControls, AbsurdControlsAtMountAreRefusedNamingTheLimitBeforeMounting) {
  write_file(source(), random_bytes(4 * kMiB, 63));
  create();
  CommandResult batch = run(clonefs("mount --metadata " + shell_quote(meta()) + " " +
                                    shell_quote(image()) + " --batch 100000"));
  EXPECT_NE(batch.exit_code, 0) << batch.output;
  EXPECT_NE(batch.output.find("1024"), std::string::npos) << batch.output;
  CommandResult rate = run(clonefs("mount --metadata " + shell_quote(meta()) + " " +
                                   shell_quote(image()) + " --rate fast"));
  EXPECT_NE(rate.exit_code, 0) << rate.output;
  EXPECT_NE(rate.output.find("fast"), std::string::npos) << rate.output;
  EXPECT_EQ(saved_controls(meta()), "paused=0 threshold=64 batch=16 rate=0");
}

// A control that cannot be saved (the metadata's disk is full) still applies, and the hydrate
// command fails saying it will not survive the unmount, instead of the loss going unnoticed.
TEST_F(SavedControls, AControlThatCannotBeSavedIsAppliedAndTheCommandFailsSayingSo) {
  write_file(source(), random_bytes(4 * kMiB, 64));
  SmallDisk disk(dir_.file("small"), "1m");
  ASSERT_TRUE(disk.ok());
  const std::string metadata = dir_.file("small/meta.db");
  CommandResult created =
      run(clonefs("create --source " + shell_quote(source()) + " --dest " + shell_quote(dest()) +
                  " --metadata " + shell_quote(metadata)));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  MountedImage mounted(metadata, image(),
                       "--no-hydration --log-file " + shell_quote(dir_.file("mount.log")));
  ASSERT_TRUE(mounted.ok()) << mounted.result().output;
  run("dd if=/dev/zero of=" + shell_quote(dir_.file("small/filler")) + " bs=4k status=none");
  CommandResult steer = run(clonefs("hydrate " + shell_quote(image()) + " --rate 3M"));
  run("rm -f " + shell_quote(dir_.file("small/filler")));
  EXPECT_NE(steer.exit_code, 0) << steer.output;
  EXPECT_NE(steer.output.find("next mount"), std::string::npos) << steer.output;
  EXPECT_EQ(live_controls(image()), "paused=1 threshold=64 batch=16 rate=3145728")
      << "the control was not applied";
  CommandResult unmounted = mounted.unmount();
  EXPECT_EQ(unmounted.exit_code, 0) << unmounted.output;
}

}  // namespace
}  // namespace clonefs::testing
