// engine/surviving_regions.h: what a killed serving process made valid is adopted by its
// successor and committed by the successor's next commit, never after a failed commit.
#include "engine/surviving_regions.h"

#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

// A memfd, as the supervisor holds it.
class Memfd {
 public:
  Memfd() : fd_(::memfd_create("surviving-regions-test", MFD_CLOEXEC)) {}
  ~Memfd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Memfd(const Memfd&) = delete;
  Memfd& operator=(const Memfd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

std::vector<std::pair<uint64_t, uint64_t>> runs(const SurvivingRegions& regions) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  regions.for_each_run([&](uint64_t first, uint64_t count) { out.emplace_back(first, count); });
  return out;
}

TEST(SurvivingRegionsTest, RecordsRunsAcrossWordsAndRefusesAnotherGeometry) {
  Memfd memfd;
  ASSERT_GE(memfd.fd(), 0);
  auto geometry = Geometry::make(200 * 4096 + 1, 4096);  // 201 regions: a short last word
  ASSERT_TRUE(geometry.is_ok());
  {
    auto regions = SurvivingRegions::map(memfd.fd(), *geometry);
    ASSERT_TRUE(regions.is_ok()) << regions.status().message();
    (*regions)->record(3, 2);
    (*regions)->record(60, 70);  // words 0, 1 and 2
    (*regions)->record(199, 5);  // past the end: clipped
    (*regions)->record(61, 1);   // already there
  }
  // A successor maps the same file and sees what its predecessor recorded.
  auto again = SurvivingRegions::map(memfd.fd(), *geometry);
  ASSERT_TRUE(again.is_ok()) << again.status().message();
  using Runs = std::vector<std::pair<uint64_t, uint64_t>>;
  EXPECT_EQ(runs(**again), (Runs{{3, 2}, {60, 70}, {199, 2}}));
  (*again)->spoil();
  EXPECT_TRUE(runs(**again).empty());

  auto other = Geometry::make(200 * 8192, 8192);
  ASSERT_TRUE(other.is_ok());
  EXPECT_FALSE(SurvivingRegions::map(memfd.fd(), *other).is_ok());
}

class SurvivingRegionsRules : public EngineFixture {
 protected:
  // What each serving process of a supervised mount does (fuse/predecessors.cc).
  uint64_t adopt() {
    auto geometry = Geometry::make(kImageSize, kRegion);
    auto regions = SurvivingRegions::map(memfd_.fd(), *geometry);
    EXPECT_TRUE(regions.is_ok()) << regions.status().message();
    if (!regions.is_ok()) return 0;
    return engine_->adopt_surviving(std::move(*regions));
  }

  Memfd memfd_;
};

TEST_F(SurvivingRegionsRules, AWriteAcknowledgedBeforeAKillIsKeptAndTheNextFlushCommitsIt) {
  EXPECT_EQ(adopt(), 0u);
  // Into regions not valid, acknowledged, not flushed: only memory says they are valid.
  ASSERT_TRUE(write(5 * kRegion + 100, random_bytes(333, 11)).is_ok());
  ASSERT_TRUE(engine_->discard(8 * kRegion, 2 * kRegion).is_ok());
  std::fill(model_.begin() + 8 * kRegion, model_.begin() + 10 * kRegion, std::byte{0});
  crash_and_reopen();
  EXPECT_EQ(adopt(), 3u);
  EXPECT_TRUE(engine_->bitmap().test(5));
  expect_image_matches_model();
  // The successor's flush commits them (after its fdatasync): a restart without the record now
  // keeps them too.
  const uint64_t syncs = engine_->counters().destination_syncs.load();
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_EQ(engine_->counters().destination_syncs.load(), syncs + 1);
  crash_and_reopen();
  EXPECT_TRUE(engine_->bitmap().test(5));
  EXPECT_TRUE(engine_->bitmap().test(9));
  expect_image_matches_model();
}

TEST_F(SurvivingRegionsRules, AfterAFailedCommitNothingIsAdoptedAndTheSuccessorFailsEveryIo) {
  EXPECT_EQ(adopt(), 0u);
  ASSERT_TRUE(write(5 * kRegion + 100, random_bytes(333, 12)).is_ok());
  dest_->fail_sync = EIO;  // the fdatasync may have dropped the region's data
  EXPECT_FALSE(engine_->flush().is_ok());
  crash_and_reopen();
  EXPECT_EQ(adopt(), 0u);
  EXPECT_FALSE(engine_->bitmap().test(5));
  // The write is not kept, so nothing may pass from here on as if it were: the successor fails
  // every I/O, as its predecessor did, and says why.
  Status flushed = engine_->flush();
  EXPECT_FALSE(flushed.is_ok());
  EXPECT_NE(flushed.message().find("previous serving process failed a commit"), std::string::npos)
      << flushed.message();
  EXPECT_FALSE(write(9 * kRegion, random_bytes(100, 13)).is_ok());
  std::vector<std::byte> back(kRegion);
  EXPECT_FALSE(engine_->read(5 * kRegion, back).is_ok());
  // Killed again, the next successor finds the record still spoiled.
  crash_and_reopen();
  EXPECT_EQ(adopt(), 0u);
  EXPECT_FALSE(engine_->flush().is_ok());
}

// Issue 26, hole 1: the dead process was killed inside a destination sync that failed, and its
// own description consumed the error. The supervisor's sync through the description it held
// since the mount started reports it and spoils the record without mapping it: nothing is
// adopted and every I/O fails, now and after another kill.
TEST_F(SurvivingRegionsRules, ARecordTheSupervisorSpoilsAdoptsNothingAndFailsEveryIo) {
  EXPECT_EQ(adopt(), 0u);
  ASSERT_TRUE(write(5 * kRegion + 100, random_bytes(333, 14)).is_ok());
  crash_and_reopen();
  ASSERT_TRUE(SurvivingRegions::spoil(memfd_.fd()).is_ok());
  EXPECT_EQ(adopt(), 0u);
  EXPECT_FALSE(engine_->bitmap().test(5));
  Status flushed = engine_->flush();
  EXPECT_FALSE(flushed.is_ok());
  EXPECT_NE(flushed.message().find("failed a commit or a destination sync"), std::string::npos)
      << flushed.message();
  crash_and_reopen();
  EXPECT_EQ(adopt(), 0u);
  EXPECT_FALSE(engine_->flush().is_ok());
}

TEST(SurvivingRegionsTest, ARecordNoServingProcessStampedCannotBeSpoiled) {
  Memfd memfd;
  ASSERT_GE(memfd.fd(), 0);
  EXPECT_FALSE(SurvivingRegions::spoil(memfd.fd()).is_ok());
}

}  // namespace
}  // namespace clonefs::testing
