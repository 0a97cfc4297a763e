// Issue 13, docs/PROFILE.md: the access profile's format, its recording (order of first use, as
// runs, bounded, written atomically) and the refusal of a profile of another source.
#include "engine/access_profile.h"

#include <sys/stat.h>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

AccessProfile sample() {
  return {.source_size = 1 << 20,
          .source_fingerprint = "fnv1a64:0123456789abcdef",
          .region_size = 4096,
          .runs = {{40, 3}, {2, 1}, {100, 20}}};
}

TEST(AccessProfileFormat, WrittenAndReadBack) {
  auto parsed = parse_profile(format_profile(sample()), "p");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  EXPECT_EQ(parsed->source_size, sample().source_size);
  EXPECT_EQ(parsed->source_fingerprint, sample().source_fingerprint);
  EXPECT_EQ(parsed->region_size, 4096u);
  EXPECT_EQ(parsed->runs, sample().runs);
  EXPECT_EQ(format_profile(sample()),
            "clonefs-profile 1\nsource-size 1048576\nsource-fingerprint "
            "fnv1a64:0123456789abcdef\nregion-size 4096\nruns 3\n40 3\n2 1\n100 20\nend\n");
}

TEST(AccessProfileFormat, AnythingElseIsRefusedNamingTheLine) {
  const std::string good = format_profile(sample());
  const std::pair<std::string, std::string> bad[] = {
      {"", "line 1"},
      {"#!/bin/sh\n", "line 1"},
      {good.substr(0, good.find("region-size")), "line 4"},
      {std::string(good).replace(good.find("40 3"), 4, "40 0"), "line 6"},
      {std::string(good).replace(good.find("40 3"), 4, "40,3"), "line 6"},
      {good.substr(0, good.size() - 4), "line 9"},  // cut before "end"
  };
  for (const auto& [text, where] : bad) {
    auto parsed = parse_profile(text, "/x/p");
    ASSERT_FALSE(parsed.is_ok()) << text;
    EXPECT_EQ(parsed.status().code(), EINVAL);
    EXPECT_NE(parsed.status().message().find("profile /x/p " + where), std::string::npos)
        << parsed.status().message();
  }
}

TEST(AccessProfilePlan, AProfileOfAnotherSourceIsRefused) {
  CloneRecord record{.image_size = 1 << 20,
                     .region_size = 4096,
                     .source_path = "/golden.img",
                     .source_size = 1 << 20,
                     .source_fingerprint = "fnv1a64:ffff"};
  auto geometry = Geometry::make(record.image_size, record.region_size);
  auto plan = profile_plan(sample(), "/x/p", record, *geometry);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), EINVAL);
  EXPECT_NE(plan.status().message().find("profile /x/p was recorded on another source"),
            std::string::npos)
      << plan.status().message();
  record.source_fingerprint = sample().source_fingerprint;
  plan = profile_plan(sample(), "/x/p", record, *geometry);
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  EXPECT_EQ(*plan, sample().runs);
}

// Recorded at 4 KiB regions, replayed at 16 KiB: every region a run touches, none past the end.
TEST(AccessProfilePlan, RunsAreConvertedToTheClonesRegions) {
  CloneRecord record{.image_size = (1 << 20) - 100,
                     .region_size = 16384,
                     .source_size = 1 << 20,
                     .source_fingerprint = sample().source_fingerprint};
  AccessProfile profile = sample();
  profile.runs = {{3, 2}, {250, 100}, {5000, 1}};
  auto geometry = Geometry::make(record.image_size, record.region_size);
  auto plan = profile_plan(profile, "p", record, *geometry);
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  const std::vector<RegionRun> expected{{0, 2}, {62, 2}};
  EXPECT_EQ(*plan, expected);
}

using ProfileRecording = EngineFixture;

TEST_F(ProfileRecording, RecordsTheOrderOfFirstUseAsRunsAndWritesAtStop) {
  const std::string path = dir_.file("profile");
  CloneRecord record = meta_->record();
  ProfileRecorder recorder(path, record, engine_->geometry(), std::chrono::hours(1));
  engine_->add_observer(&recorder);
  (void)read(5 * kRegion + 10, 3 * kRegion);  // 5, 6, 7, 8
  (void)read(2 * kRegion, 10);
  (void)read(6 * kRegion, kRegion);                              // seen
  ASSERT_TRUE(write(9 * kRegion, random_bytes(20, 1)).is_ok());  // extends 5-8
  ASSERT_TRUE(engine_->discard(12 * kRegion, kRegion).is_ok());
  engine_->remove_observer(&recorder);
  (void)read(14 * kRegion, 1);  // no longer observed
  EXPECT_FALSE(::access(path.c_str(), F_OK) == 0) << "written before stop or a period";
  ASSERT_TRUE(recorder.stop().is_ok());
  auto written = read_profile(path);
  ASSERT_TRUE(written.is_ok()) << written.status().message();
  const std::vector<RegionRun> expected{{5, 4}, {2, 1}, {9, 1}, {12, 1}};
  EXPECT_EQ(written->runs, expected);
  EXPECT_EQ(written->source_fingerprint, record.source_fingerprint);
  EXPECT_EQ(written->source_size, record.source_size);
  EXPECT_EQ(written->region_size, kRegion);
  struct stat st {};
  EXPECT_NE(::stat((path + ".new").c_str(), &st), 0) << "the temporary file was left";
}

TEST_F(ProfileRecording, StopsRecordingAtTheRunLimitKeepingWhatItHas) {
  const std::string path = dir_.file("profile");
  ProfileRecorder recorder(path, meta_->record(), engine_->geometry(), std::chrono::hours(1), 2);
  engine_->add_observer(&recorder);
  for (uint64_t r : {1, 3, 4, 8, 10}) (void)read(r * kRegion, 1);
  engine_->remove_observer(&recorder);
  ASSERT_TRUE(recorder.stop().is_ok());
  const std::vector<RegionRun> expected{{1, 1}, {3, 2}};
  EXPECT_EQ(read_profile(path)->runs, expected);
}

TEST_F(ProfileRecording, WrittenPeriodicallyWhileRecording) {
  const std::string path = dir_.file("profile");
  ProfileRecorder recorder(path, meta_->record(), engine_->geometry(),
                           std::chrono::milliseconds(10));
  engine_->add_observer(&recorder);
  (void)read(7 * kRegion, 1);
  // Waits for the writer thread (a hang would time the test out); no assertion on how fast.
  while (::access(path.c_str(), F_OK) != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  engine_->remove_observer(&recorder);
  auto written = read_profile(path);
  ASSERT_TRUE(written.is_ok()) << written.status().message();
  const std::vector<RegionRun> expected{{7, 1}};
  EXPECT_EQ(written->runs, expected);
  ASSERT_TRUE(recorder.stop().is_ok());
}

// A successor serving process carries on the recording its killed predecessor left in the file.
TEST_F(ProfileRecording, ResumedRecordingKeepsTheEarlierRunsFirstAndDoesNotRepeatThem) {
  const std::string path = dir_.file("profile");
  AccessProfile earlier{.source_size = meta_->record().source_size,
                        .source_fingerprint = meta_->record().source_fingerprint,
                        .region_size = kRegion,
                        .runs = {{5, 2}, {1, 1}}};
  ProfileRecorder recorder(path, meta_->record(), engine_->geometry(), std::chrono::hours(1));
  ASSERT_TRUE(recorder.resume(earlier).is_ok());
  engine_->add_observer(&recorder);
  (void)read(6 * kRegion, kRegion);  // recorded before the kill
  (void)read(7 * kRegion, 1);        // extends 5-6
  (void)read(3 * kRegion, 1);
  engine_->remove_observer(&recorder);
  ASSERT_TRUE(recorder.stop().is_ok());
  const std::vector<RegionRun> expected{{5, 2}, {1, 1}, {7, 1}, {3, 1}};
  EXPECT_EQ(read_profile(path)->runs, expected);
}

TEST_F(ProfileRecording, ResumingAnotherClonesProfileIsRefusedAndChangesNothing) {
  const std::string path = dir_.file("profile");
  ProfileRecorder recorder(path, meta_->record(), engine_->geometry(), std::chrono::hours(1));
  AccessProfile foreign{.source_size = meta_->record().source_size,
                        .source_fingerprint = "another source",
                        .region_size = kRegion,
                        .runs = {{5, 2}}};
  EXPECT_FALSE(recorder.resume(foreign).is_ok());
  AccessProfile past_the_end{.source_size = meta_->record().source_size,
                             .source_fingerprint = meta_->record().source_fingerprint,
                             .region_size = kRegion,
                             .runs = {{engine_->geometry().region_count() - 1, 2}}};
  EXPECT_FALSE(recorder.resume(past_the_end).is_ok());
  EXPECT_TRUE(recorder.snapshot().runs.empty());
  ASSERT_TRUE(recorder.stop(false).is_ok());
}

}  // namespace
}  // namespace clonefs::testing
