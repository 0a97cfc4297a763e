// Issue #18: the hydration controls are kept in the metadata between mounts, in a table created
// by the first save; a clone without it (an older clonefs made it) gets the defaults.
#include <gtest/gtest.h>

#include "daemon/hydration_control.h"
#include "engine/clone.h"
#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

using SavedSettings = EngineFixture;

TEST_F(SavedSettings, AreNoneUntilSavedThenReadBackAlsoByAReader) {
  auto store = MetadataStore::open(dir_.file("meta2.db"));
  ASSERT_FALSE(store.is_ok());  // (no such file: the fixture's own metadata is held by its engine)
  CloneRecord record{.image_size = 1 << 20,
                     .region_size = 4096,
                     .source_path = "/s",
                     .source_size = 1 << 20,
                     .source_fingerprint = "f",
                     .destination_path = "/d"};
  ASSERT_TRUE(MetadataStore::create(dir_.file("meta2.db"), record, false).is_ok());
  {
    auto writer = MetadataStore::open(dir_.file("meta2.db"));
    ASSERT_TRUE(writer.is_ok()) << writer.status().message();
    auto none = (*writer)->load_hydration_settings();
    ASSERT_TRUE(none.is_ok()) << none.status().message();
    EXPECT_FALSE(none->has_value()) << "a fresh clone has saved controls";
    HydrationSettings wanted{.paused = true, .threshold = 8, .batch = 4, .rate = 5 << 20};
    ASSERT_TRUE((*writer)->save_hydration_settings(wanted).is_ok());
    wanted.rate = 7 << 20;
    ASSERT_TRUE((*writer)->save_hydration_settings(wanted).is_ok());
  }
  auto reader = MetadataStore::open(dir_.file("meta2.db"), {.read_only = true});
  ASSERT_TRUE(reader.is_ok()) << reader.status().message();
  auto saved = (*reader)->load_hydration_settings();
  ASSERT_TRUE(saved.is_ok() && saved->has_value());
  EXPECT_EQ(**saved,
            (HydrationSettings{.paused = true, .threshold = 8, .batch = 4, .rate = 7 << 20}));
}

// What a mount does (cli/serve_clone.cc): saved controls, the mount's flags over them, saved.
TEST_F(SavedSettings, MountFlagsApplyOverTheSavedControlsAndAreSaved) {
  CloneRecord record{.image_size = 1 << 20,
                     .region_size = 4096,
                     .source_path = "/s",
                     .source_size = 1 << 20,
                     .source_fingerprint = "f",
                     .destination_path = "/d"};
  ASSERT_TRUE(MetadataStore::create(dir_.file("meta2.db"), record, false).is_ok());
  auto store = MetadataStore::open(dir_.file("meta2.db"));
  ASSERT_TRUE(store.is_ok());
  auto defaults = settings_for_mount(**store, {});
  ASSERT_TRUE(defaults.is_ok());
  EXPECT_EQ(*defaults, HydrationSettings{});
  EXPECT_FALSE((*store)->load_hydration_settings()->has_value())
      << "nothing given, yet something saved";
  const HydrateCommand given[] = {{HydrateCommand::Kind::kRate, 1000},
                                  {HydrateCommand::Kind::kPause, 0}};
  auto mounted = settings_for_mount(**store, given);
  ASSERT_TRUE(mounted.is_ok());
  EXPECT_EQ(*mounted, (HydrationSettings{.paused = true, .rate = 1000}));
  EXPECT_EQ(**(*store)->load_hydration_settings(), *mounted);
}

class FailingSettingsStore : public HydrationSettingsStore {
 public:
  Result<std::optional<HydrationSettings>> load_hydration_settings() override {
    return std::optional<HydrationSettings>();
  }
  Status save_hydration_settings(const HydrationSettings&) override {
    ++saves;
    return Status::error(ENOSPC, "metadata /m: write hydration controls: database or disk is full");
  }
  int saves = 0;
};

// A runtime request is applied and saved; a failed save is the request's error, not dropped.
TEST_F(SavedSettings, AFailedSaveIsReportedAndAHoldIsNotSaved) {
  Hydrator hydrator(*engine_, {.paused = true});
  FailingSettingsStore store;
  Status steered = steer_hydration(hydrator, store, {HydrateCommand::Kind::kRate, 4096});
  EXPECT_EQ(steered.code(), ENOSPC);
  EXPECT_NE(steered.message().find("not saved"), std::string::npos) << steered.message();
  EXPECT_EQ(hydrator.status().settings.rate, 4096u) << "the request itself was not applied";
  int saves = store.saves;
  EXPECT_TRUE(steer_hydration(hydrator, store, {HydrateCommand::Kind::kHold, 0}).is_ok());
  EXPECT_EQ(store.saves, saves) << "unmount's hold was saved as the user's pause";
  EXPECT_TRUE(hydrator.status().settings.paused);
}

}  // namespace
}  // namespace clonefs::testing
