// docs/SEMANTICS.md "Flush and commit" and "When things fail": the seed rule, counted.
#include <thread>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

using CommitRules = EngineFixture;

TEST_F(CommitRules, FlushAfterChangesCostsOneDestinationSyncAndOneCommit) {
  ASSERT_TRUE(write(0, random_bytes(kRegion, 1)).is_ok());
  ASSERT_TRUE(write(5 * kRegion + 3, random_bytes(10, 2)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_EQ(dest_->syncs.load(), 1);
  EXPECT_EQ(store_->commits.load(), 1);
}

TEST_F(CommitRules, FlushWithNothingToCommitStillSyncsTheDestination) {
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_EQ(dest_->syncs.load(), 1);
  EXPECT_EQ(store_->commits.load(), 0);
}

TEST_F(CommitRules, RewritingAValidRegionCommitsNothing) {
  ASSERT_TRUE(write(0, random_bytes(kRegion, 1)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  ASSERT_TRUE(write(10, random_bytes(100, 2)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_EQ(dest_->syncs.load(), 2);
  EXPECT_EQ(store_->commits.load(), 1);
}

TEST_F(CommitRules, CommittedRegionsAndFlushedWritesSurviveAReopen) {
  ASSERT_TRUE(write(2 * kRegion + 1, random_bytes(50, 3)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  crash_and_reopen();
  EXPECT_TRUE(engine_->bitmap().test(2));
  expect_image_matches_model();
}

TEST_F(CommitRules, UncommittedRegionsReadTheSourceAfterACrash) {
  ASSERT_TRUE(engine_->write(8 * kRegion, random_bytes(kRegion, 4)).is_ok());  // not flushed
  crash_and_reopen();
  EXPECT_FALSE(engine_->bitmap().test(8));
  expect_image_matches_model();  // model_ never saw the unflushed write
}

TEST_F(CommitRules, CloseCommits) {
  ASSERT_TRUE(write(kRegion, random_bytes(kRegion, 5)).is_ok());
  ASSERT_TRUE(engine_->close().is_ok());
  crash_and_reopen();
  EXPECT_TRUE(engine_->bitmap().test(1));
  expect_image_matches_model();
}

TEST_F(CommitRules, ACommitWritesOnlyTheChunksOfItsTransaction) {
  // 16 regions fit in one chunk: one chunk image, holding exactly the regions made valid.
  ASSERT_TRUE(write(0, random_bytes(kRegion, 1)).is_ok());
  ASSERT_TRUE(write(3 * kRegion, random_bytes(kRegion, 2)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  ASSERT_EQ(store_->committed.size(), 1u);
  ASSERT_EQ(store_->committed[0].size(), 1u);
  EXPECT_EQ(std::to_integer<int>(store_->committed[0][0].bytes[0]), 0b1001);
}

TEST_F(CommitRules, RegionValidAfterTheFreezeBelongsToTheNextTransaction) {
  // While the destination is being synced (after the freeze), another region becomes valid:
  // the commit in progress must not claim it, since its data may not be durable.
  std::atomic<bool> once{false};
  dest_->before_sync = [&] {
    if (once.exchange(true)) return;
    std::thread writer(
        [&] { ASSERT_TRUE(engine_->write(6 * kRegion, random_bytes(kRegion, 6)).is_ok()); });
    writer.join();
  };
  ASSERT_TRUE(write(0, random_bytes(kRegion, 1)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  ASSERT_EQ(store_->committed.size(), 1u);
  EXPECT_EQ(std::to_integer<int>(store_->committed[0][0].bytes[0]), 0b1);  // region 0, not 6
  EXPECT_TRUE(engine_->bitmap().test(6));
  EXPECT_EQ(engine_->status().transaction_regions, 1u);
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_EQ(std::to_integer<int>(store_->committed[1][0].bytes[0]), 0b1000001);
}

TEST_F(CommitRules, PeriodicCommitRunsWhenTheTransactionIsNotEmpty) {
  open_engine({.copy_on_read = false, .commit_period = std::chrono::milliseconds(20)});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(store_->commits.load(), 0);  // nothing to commit: no periodic commit
  ASSERT_TRUE(engine_->write(0, random_bytes(kRegion, 1)).is_ok());
  for (int i = 0; i < 200 && store_->commits.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(store_->commits.load(), 1);
  EXPECT_GE(dest_->syncs.load(), 1);
}

TEST_F(CommitRules, FailedCommitRollsBackToReadOnlyMetadataMode) {
  ASSERT_TRUE(write(0, random_bytes(kRegion, 1)).is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());                                   // region 0 committed
  ASSERT_TRUE(engine_->write(kRegion, random_bytes(kRegion, 2)).is_ok());  // region 1 not
  store_->fail_commit = ENOSPC;
  Status st = engine_->flush();
  EXPECT_EQ(st.code(), ENOSPC);
  EngineStatus status = engine_->status();
  EXPECT_EQ(status.mode, MetadataMode::kReadOnly);
  EXPECT_NE(status.mode_reason.find("commit failed"), std::string::npos) << status.mode_reason;
  // Rolled back: region 1 reads the source again; reads keep working.
  EXPECT_FALSE(engine_->bitmap().test(1));
  expect_image_matches_model();
  // Writes that would make a region valid fail; writes to committed regions still work.
  EXPECT_EQ(engine_->write(2 * kRegion, random_bytes(kRegion, 3)).code(), EIO);
  EXPECT_TRUE(write(5, random_bytes(5, 4)).is_ok());
}

TEST_F(CommitRules, FailedReloadAfterAFailedCommitIsFailMode) {
  ASSERT_TRUE(engine_->write(0, random_bytes(kRegion, 1)).is_ok());
  store_->fail_commit = EIO;
  store_->fail_load = EIO;
  EXPECT_FALSE(engine_->flush().is_ok());
  EXPECT_EQ(engine_->status().mode, MetadataMode::kFail);
  std::vector<std::byte> buf(10);
  EXPECT_EQ(engine_->read(0, buf).code(), EIO);
  EXPECT_EQ(engine_->write(0, buf).code(), EIO);
  EXPECT_EQ(engine_->flush().code(), EIO);
}

TEST_F(CommitRules, FailedDestinationSyncCommitsNothingAndStaysFailed) {
  ASSERT_TRUE(engine_->write(0, random_bytes(kRegion, 1)).is_ok());
  dest_->fail_sync = EIO;
  EXPECT_EQ(engine_->flush().code(), EIO);
  EXPECT_EQ(store_->commits.load(), 0);
  EXPECT_EQ(engine_->status().mode, MetadataMode::kReadOnly);
  // Sticky: a later fdatasync could succeed without the pages the failed one dropped.
  dest_->fail_sync = 0;
  EXPECT_EQ(engine_->flush().code(), EIO);
  crash_and_reopen();
  EXPECT_FALSE(engine_->bitmap().test(0));
}

// docs/SEMANTICS.md "When things fail": a failure is never forgotten. A periodic commit that
// failed rolled back regions whose writes were acknowledged; an fsync after it must not say 0.
TEST_F(CommitRules, FailedPeriodicCommitFailsEveryLaterFlush) {
  open_engine({.copy_on_read = false, .commit_period = std::chrono::milliseconds(10)});
  store_->fail_commit = ENOSPC;
  ASSERT_TRUE(
      engine_->write(3 * kRegion, random_bytes(kRegion, 7)).is_ok());  // never-touched region
  for (int i = 0; i < 500 && engine_->status().mode == MetadataMode::kReadWrite; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(engine_->status().mode, MetadataMode::kReadOnly);
  store_->fail_commit = 0;  // the disk has room again: still, the rolled-back write is gone
  Status st = engine_->flush();
  EXPECT_EQ(st.code(), EIO) << st.message();
  EXPECT_NE(st.message().find("commit failed"), std::string::npos) << st.message();
  EXPECT_EQ(engine_->flush().code(), EIO);  // and every flush after it
  EXPECT_EQ(engine_->close().code(), EIO);  // and the final one
}

TEST_F(CommitRules, FailedUserCommitFailsEveryLaterFlushEvenWithNothingNew) {
  ASSERT_TRUE(engine_->write(kRegion, random_bytes(kRegion, 2)).is_ok());
  store_->fail_commit = EIO;
  EXPECT_EQ(engine_->flush().code(), EIO);
  store_->fail_commit = 0;
  EXPECT_EQ(engine_->flush().code(), EIO);
}

TEST_F(CommitRules, CloseInReadOnlyModeReportsWhy) {
  ASSERT_TRUE(engine_->write(0, random_bytes(kRegion, 1)).is_ok());
  dest_->fail_sync = EIO;
  EXPECT_EQ(engine_->flush().code(), EIO);
  dest_->fail_sync = 0;
  Status closed = engine_->close();
  EXPECT_EQ(closed.code(), EIO);
  EXPECT_NE(closed.message().find("fdatasync"), std::string::npos) << closed.message();
}

// In read-only mode a write that needs its region to become valid fails before the destination
// is touched (a partial write would otherwise copy the whole region first).
TEST_F(CommitRules, ReadOnlyModeRefusesNewRegionsBeforeWritingTheDestination) {
  ASSERT_TRUE(engine_->write(0, random_bytes(kRegion, 1)).is_ok());
  store_->fail_commit = ENOSPC;
  EXPECT_EQ(engine_->flush().code(), ENOSPC);
  ASSERT_EQ(engine_->status().mode, MetadataMode::kReadOnly);
  int writes = dest_->writes.load();
  EXPECT_EQ(engine_->write(4 * kRegion + 100, random_bytes(100, 2)).code(), EIO);  // partial
  EXPECT_EQ(engine_->write(5 * kRegion, random_bytes(kRegion, 3)).code(), EIO);    // whole
  EXPECT_EQ(engine_->discard(6 * kRegion + 10, 100).code(), EIO);  // partial discard
  EXPECT_FALSE(engine_->hydrate(7, 4).is_ok());
  EXPECT_EQ(dest_->writes.load(), writes) << "the destination was written in read-only mode";
  expect_image_matches_model();
}

}  // namespace
}  // namespace clonefs::testing
