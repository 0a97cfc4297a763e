// The image file's own rules, without a mount: each test cites the row of docs/SEMANTICS.md
// "Operations on the image" it checks. The FUSE handlers (src/fuse/image_ops.cc) only translate.
#include "image/image_file.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uid_t kOwner = 1000;
constexpr uid_t kOther = 1001;
constexpr struct timespec kCreated { 100, 1 };
constexpr struct timespec kNow { 5000, 7 };

bool same_time(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

class ImageFileTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    ASSERT_TRUE(engine_);
    ImageAttributes a{.mode = 0640,
                      .uid = kOwner,
                      .gid = 50,
                      .atime = kCreated,
                      .mtime = kCreated,
                      .ctime = kCreated};
    image_ =
        std::make_unique<ImageFile>(*engine_, "/images/test.img", a, [this] { return clock_; });
  }

  ImageFile& image() { return *image_; }
  std::vector<std::byte> read_image(int64_t offset, size_t size) {
    auto lease = image().read(offset, size);
    EXPECT_TRUE(lease.is_ok()) << lease.status().message();
    if (!lease) return {};
    return {lease->span().begin(), lease->span().end()};
  }
  void zero_model(uint64_t offset, uint64_t length) {
    std::fill_n(model_.begin() + static_cast<long>(offset), length, std::byte{0});
  }

  struct timespec clock_ = kNow;
  std::unique_ptr<ImageFile> image_;
};

// "Reads at or past the end return 0 bytes."
TEST_F(ImageFileTest, ReadsStopAtTheEnd) {
  EXPECT_TRUE(read_image(0, kImageSize) == model(0, kImageSize));
  EXPECT_TRUE(read_image(kImageSize - 100, 4096) == model(kImageSize - 100, 100));
  EXPECT_TRUE(read_image(kImageSize, 4096).empty());
  EXPECT_TRUE(read_image(kImageSize + 12345, 4096).empty());
  auto negative = image().read(-1, 10);
  ASSERT_FALSE(negative.is_ok());
  EXPECT_EQ(negative.status().code(), EINVAL);
}

// "write at or past the end: EFBIG: the size is fixed."
TEST_F(ImageFileTest, WritesAtOrPastTheEndAreEFBIG) {
  auto bytes = random_bytes(100, 1);
  for (int64_t offset :
       {static_cast<int64_t>(kImageSize), static_cast<int64_t>(kImageSize) + 4096, int64_t{-1}}) {
    auto written = image().write(offset, bytes);
    ASSERT_FALSE(written.is_ok()) << "offset " << offset;
    EXPECT_EQ(written.status().code(), EFBIG);
    EXPECT_NE(written.status().message().find("/images/test.img"), std::string::npos)
        << written.status().message();
  }
  expect_image_matches_model();
}

// "A write that straddles the end is cut short there, as on a full device."
TEST_F(ImageFileTest, AWriteStraddlingTheEndIsCutShortThere) {
  auto bytes = random_bytes(300, 2);
  auto written = image().write(kImageSize - 100, bytes);
  ASSERT_TRUE(written.is_ok()) << written.status().message();
  EXPECT_EQ(*written, 100u);
  std::copy_n(bytes.begin(), 100, model_.begin() + static_cast<long>(kImageSize - 100));
  expect_image_matches_model();
  EXPECT_EQ(image().stat().st_size, static_cast<off_t>(kImageSize));

  written = image().write(kRegion + 10, bytes);  // inside: written whole
  ASSERT_TRUE(written.is_ok());
  EXPECT_EQ(*written, bytes.size());
  std::copy(bytes.begin(), bytes.end(), model_.begin() + static_cast<long>(kRegion + 10));
  expect_image_matches_model();
}

// "`fsync`, `fdatasync`: ... durable in the destination and the commit covering it is durable."
TEST_F(ImageFileTest, SyncFlushesTheEngine) {
  ASSERT_TRUE(image().write(0, random_bytes(kRegion, 3)).is_ok());
  const uint64_t commits = engine_->counters().metadata_commits.load();
  ASSERT_TRUE(image().sync().is_ok());
  EXPECT_EQ(engine_->counters().metadata_commits.load(), commits + 1);
  EXPECT_EQ(engine_->status().transaction_regions, 0u);
}

// "`fallocate` PUNCH_HOLE (with KEEP_SIZE), ZERO_RANGE: ... Afterwards the whole range reads
// zeros."
TEST_F(ImageFileTest, PunchAndZeroRangeDiscard) {
  ASSERT_TRUE(image()
                  .fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * kRegion, 2 * kRegion)
                  .is_ok());
  zero_model(2 * kRegion, 2 * kRegion);
  EXPECT_TRUE(engine_->bitmap().test(2) && engine_->bitmap().test(3))
      << "whole regions become valid uncopied";
  ASSERT_TRUE(image().fallocate(FALLOC_FL_ZERO_RANGE, 5 * kRegion + 10, 100).is_ok());
  zero_model(5 * kRegion + 10, 100);
  expect_image_matches_model();
}

TEST_F(ImageFileTest, PunchStraddlingTheEndWithKeepSizeStopsThere) {
  ASSERT_TRUE(image()
                  .fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kImageSize - 500, 10000)
                  .is_ok());
  zero_model(kImageSize - 500, 500);
  // Wholly past the end: nothing to do.
  ASSERT_TRUE(image()
                  .fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, kImageSize + 4096, 4096)
                  .is_ok());
  expect_image_matches_model();
  EXPECT_EQ(image().stat().st_size, static_cast<off_t>(kImageSize));
}

// "--writeback-cache: a write straddling the end ... the part inside the image is written ...
// and the next fsync fails with EFBIG" (issue 26, hole 4: a short count reached nobody).
TEST_F(ImageFileTest, AWriteStraddlingTheEndOutOfTheKernelCacheWritesThePartInsideAndFails) {
  ImageFile cached(*engine_, "/images/test.img", {}, {}, ImageFile::WritesReach::kKernelCacheFirst);
  auto bytes = random_bytes(300, 3);
  auto written = cached.write(kImageSize - 100, bytes);
  ASSERT_FALSE(written.is_ok());
  EXPECT_EQ(written.status().code(), EFBIG);
  EXPECT_NE(written.status().message().find("the 100 bytes inside were written"), std::string::npos)
      << written.status().message();
  std::copy_n(bytes.begin(), 100, model_.begin() + static_cast<long>(kImageSize - 100));
  expect_image_matches_model();
  EXPECT_EQ(cached.stat().st_size, static_cast<off_t>(kImageSize));
  written = cached.write(kRegion + 10, bytes);  // inside: written whole
  ASSERT_TRUE(written.is_ok()) << written.status().message();
  EXPECT_EQ(*written, bytes.size());
}

// "`fallocate` mode 0 or KEEP_SIZE (preallocate): Succeeds without doing anything inside the
// image; past the end without KEEP_SIZE it is EFBIG."
TEST_F(ImageFileTest, PreallocationIsANoOpAndPastTheEndWithoutKeepSizeIsEFBIG) {
  const int writes = dest_->writes.load();
  EXPECT_TRUE(image().fallocate(0, 0, kImageSize).is_ok());
  EXPECT_TRUE(
      image().fallocate(FALLOC_FL_KEEP_SIZE, kRegion, kImageSize).is_ok());  // past the end too
  EXPECT_EQ(dest_->writes.load(), writes);
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u) << "preallocation discarded regions";
  for (int mode : {0, FALLOC_FL_ZERO_RANGE, FALLOC_FL_PUNCH_HOLE}) {
    Status st = image().fallocate(mode, kImageSize - 10, 20);
    EXPECT_EQ(st.code(), EFBIG) << "mode " << mode << ": " << st.message();
  }
  expect_image_matches_model();
}

// "other `fallocate` modes (COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE, ...): EOPNOTSUPP."
TEST_F(ImageFileTest, OtherFallocateModesAreNotSupported) {
  for (int mode : {FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE,
                   FALLOC_FL_NO_HIDE_STALE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}) {
    Status st = image().fallocate(mode, 0, kRegion);
    EXPECT_EQ(st.code(), EOPNOTSUPP) << "mode " << mode << ": " << st.message();
  }
  EXPECT_EQ(image().fallocate(0, -1, 10).code(), EINVAL);
  EXPECT_EQ(image().fallocate(0, 0, 0).code(), EINVAL);
  expect_image_matches_model();
}

// "`truncate`, `ftruncate`: To the current size: succeeds (a no-op). To any other size: EPERM,
// naming the fixed size."
TEST_F(ImageFileTest, ResizeIsRefusedUnlessTheSizeIsUnchanged) {
  for (uint64_t size : {uint64_t{0}, kImageSize - 1, kImageSize + 1}) {
    Status st = image().change_attributes({.size = size}, kOwner);
    EXPECT_EQ(st.code(), EPERM) << size;
    EXPECT_NE(st.message().find(std::to_string(kImageSize)), std::string::npos) << st.message();
  }
  EXPECT_TRUE(same_time(image().attributes().ctime, kCreated)) << "a refused change changed ctime";
  EXPECT_TRUE(image().change_attributes({.size = kImageSize}, kOther).is_ok());
  EXPECT_EQ(image().stat().st_size, static_cast<off_t>(kImageSize));
  expect_image_matches_model();
}

// getattr: a regular file of the source's size, inode 1, the attributes it was given.
TEST_F(ImageFileTest, StatReportsTheImage) {
  struct stat st = image().stat();
  EXPECT_EQ(st.st_ino, 1u);
  EXPECT_EQ(st.st_mode, S_IFREG | 0640);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, kOwner);
  EXPECT_EQ(st.st_gid, 50u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(kImageSize));
  EXPECT_EQ(st.st_blocks, static_cast<blkcnt_t>((kImageSize + 511) / 512));
  EXPECT_EQ(st.st_blksize, static_cast<blksize_t>(kRegion));
  EXPECT_TRUE(same_time(st.st_mtim, kCreated));
  struct statvfs fs = image().statfs();
  EXPECT_EQ(fs.f_bsize, kRegion);
  EXPECT_EQ(fs.f_frsize, kRegion);
  EXPECT_EQ(fs.f_blocks, (kImageSize + kRegion - 1) / kRegion);
  EXPECT_EQ(fs.f_files, 1u);
}

// "`chmod`, `chown`, `utimes`: Change the attributes the image reports for this mount."
TEST_F(ImageFileTest, AttributesChangeAndEveryChangeSetsCtime) {
  ASSERT_TRUE(image().change_attributes({.mode = S_IFREG | 04755}, kOwner).is_ok());
  EXPECT_EQ(image().stat().st_mode, S_IFREG | 04755) << "only the permission bits are kept";
  EXPECT_TRUE(same_time(image().attributes().ctime, kNow));

  clock_ = {6000, 0};
  ASSERT_TRUE(image()
                  .change_attributes({.atime = timespec{1, 2}, .mtime = timespec{3, 4}}, kOther)
                  .is_ok());
  ImageAttributes a = image().attributes();
  EXPECT_TRUE(same_time(a.atime, {1, 2}));
  EXPECT_TRUE(same_time(a.mtime, {3, 4}));
  EXPECT_TRUE(same_time(a.ctime, {6000, 0}));

  clock_ = {7000, 0};
  ASSERT_TRUE(image().change_attributes({.mtime = timespec{0, UTIME_NOW}}, kOther).is_ok());
  a = image().attributes();
  EXPECT_TRUE(same_time(a.mtime, {7000, 0})) << "UTIME_NOW is the clock's now";
  EXPECT_TRUE(same_time(a.atime, {1, 2})) << "atime was not asked to change";
  EXPECT_TRUE(same_time(a.ctime, {7000, 0}));
}

// "permissions: ... only the owner or root may chmod or chown."
TEST_F(ImageFileTest, OnlyTheOwnerOrRootChangeModeOrOwner) {
  for (AttributeChange change :
       {AttributeChange{.mode = 0666}, AttributeChange{.uid = kOther}, AttributeChange{.gid = 0}}) {
    Status st = image().change_attributes(change, kOther);
    EXPECT_EQ(st.code(), EPERM);
    EXPECT_NE(st.message().find("only its owner (uid 1000) or root"), std::string::npos)
        << st.message();
  }
  EXPECT_EQ(image().attributes().mode, 0640u);
  EXPECT_TRUE(same_time(image().attributes().ctime, kCreated));

  // The owner may not give the image away, but may "chown" it to themselves and change its group.
  Status give = image().change_attributes({.uid = kOther}, kOwner);
  EXPECT_EQ(give.code(), EPERM);
  EXPECT_NE(give.message().find("only root may give"), std::string::npos) << give.message();
  EXPECT_EQ(image().attributes().uid, kOwner);
  EXPECT_TRUE(image().change_attributes({.mode = 0600, .uid = kOwner, .gid = 60}, kOwner).is_ok());
  EXPECT_EQ(image().attributes().gid, 60u);

  // Root may do anything, including give it away.
  ASSERT_TRUE(image().change_attributes({.mode = 0644, .uid = kOther, .gid = 0}, 0).is_ok());
  ImageAttributes a = image().attributes();
  EXPECT_EQ(a.mode, 0644u);
  EXPECT_EQ(a.uid, kOther);
  EXPECT_EQ(a.gid, 0u);
  // A refused size change refuses the whole change.
  EXPECT_EQ(image().change_attributes({.mode = 0600, .size = 1}, 0).code(), EPERM);
  EXPECT_EQ(image().attributes().mode, 0644u);
}

// The I/O size reported as st_blksize and f_bsize is a region, capped at 1 MiB.
TEST(ImageFileBlockSize, IsTheRegionCappedAtOneMebibyte) {
  TempDir dir;
  constexpr uint64_t kBigRegion = 2 << 20;
  write_file(dir.file("source.img"), random_bytes(2 * kBigRegion, 9));
  ASSERT_TRUE(create_clone({dir.file("source.img"), dir.file("dest.img"), dir.file("meta.db"),
                            kBigRegion, false})
                  .is_ok());
  OpenOptions options;
  options.engine.commit_period = std::chrono::milliseconds(0);
  auto clone = Clone::open(dir.file("meta.db"), options);
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  ImageFile image((*clone)->engine(), dir.file("image"), {});
  EXPECT_EQ(image.block_size(), 1u << 20);
  EXPECT_EQ(image.stat().st_blksize, 1 << 20);
  EXPECT_EQ(image.statfs().f_bsize, 1u << 20);
  EXPECT_EQ(image.size(), 2 * kBigRegion);
}

}  // namespace
}  // namespace clonefs::testing
