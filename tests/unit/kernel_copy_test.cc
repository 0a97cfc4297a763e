// Hydration through DestinationDevice::copy_from (reflink or copy_file_range): chosen at start by
// probing, used for the source's data extents only, given up for good when the files rule it
// out, for one span when the range does, and never hiding an I/O error.
#include "io/kernel_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <mutex>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

class KernelCopy : public EngineFixture {
 protected:
  void SetUp() override {
    share_source_descriptor_ = true;
    EngineFixture::SetUp();
  }
  void open_with(EngineOptions options) {
    options.commit_period = std::chrono::milliseconds(0);
    open_engine(options);
  }
  // Hydrates every region, batch by batch.
  Status hydrate_all(uint64_t batch = 4) {
    for (uint64_t r = 0; r < engine_->geometry().region_count();) {
      auto step = engine_->hydrate(r, batch);
      if (!step) return step.status();
      r += std::max<uint64_t>(step->hydrated, 1);
    }
    return Status::ok();
  }
  uint64_t regions() const { return engine_->geometry().region_count(); }
};

TEST_F(KernelCopy, FilesOfOneFileSystemAreCopiedInsideTheKernel) {
  // TMPDIR's file system: ext4 or tmpfs copy (copy_file_range), XFS or btrfs share (reflink).
  EXPECT_NE(engine_->copy_method(), CopyMethod::kReadWrite);
  ASSERT_TRUE(hydrate_all().is_ok());
  EXPECT_GT(dest_->copies.load(), 0);
  EXPECT_EQ(source_->reads.load(), 0) << "no source byte passed through the engine";
  EXPECT_EQ(dest_->writes.load(), 0);
  const EngineCounters& c = engine_->counters();
  EXPECT_EQ(c.regions_copied.load() + c.regions_shared.load(), regions());
  EXPECT_EQ(c.bytes_copied.load() + c.bytes_shared.load(), kImageSize);
  ASSERT_TRUE(engine_->flush().is_ok());
  EXPECT_TRUE(read_file(dir_.file("dest.img")) == source_bytes_);
  crash_and_reopen();
  EXPECT_EQ(engine_->bitmap().valid_count(), regions());
  expect_image_matches_model();
}

// The contract: the regions a copy made valid are committed only after the destination sync.
TEST_F(KernelCopy, CopiedRegionsAreCommittedOnlyAfterTheDestinationSync) {
  int syncs_at_commit = -1;
  dest_->before_sync = [&] { EXPECT_EQ(store_->commits.load(), 0); };
  ASSERT_TRUE(hydrate_all().is_ok());
  ASSERT_TRUE(engine_->flush().is_ok());
  syncs_at_commit = dest_->syncs.load();
  EXPECT_EQ(syncs_at_commit, 1);
  EXPECT_EQ(store_->commits.load(), 1);
}

TEST_F(KernelCopy, ASourceWithoutDescriptorIsReadAndWritten) {
  share_source_descriptor_ = false;
  open_with({});
  EXPECT_EQ(engine_->copy_method(), CopyMethod::kReadWrite);
  ASSERT_TRUE(hydrate_all().is_ok());
  EXPECT_EQ(dest_->copies.load(), 0);
  EXPECT_GT(source_->reads.load(), 0);
  expect_image_matches_model();
}

TEST_F(KernelCopy, TheBestMethodAllowedCapsTheChoice) {
  open_with({.best_copy_method = CopyMethod::kReadWrite});
  EXPECT_EQ(engine_->copy_method(), CopyMethod::kReadWrite);
  ASSERT_TRUE(hydrate_all().is_ok());
  EXPECT_EQ(dest_->copies.load(), 0);
  open_with({.best_copy_method = CopyMethod::kCopyFileRange});
  EXPECT_EQ(engine_->copy_method(), CopyMethod::kCopyFileRange);
}

// EXDEV, EOPNOTSUPP: the files rule the method out, hydration moves to the next one for good.
TEST_F(KernelCopy, AMethodTheFilesRuleOutIsGivenUpForGood) {
  std::vector<std::pair<CopyMethod, CopyMethod>> fallbacks;
  std::mutex mu;
  EngineOptions options;
  options.on_copy_fallback = [&](CopyMethod from, CopyMethod to, const Status& why) {
    std::lock_guard lock(mu);
    fallbacks.emplace_back(from, to);
    EXPECT_NE(why.message().find("injected"), std::string::npos) << why.message();
  };
  open_with(options);
  const CopyMethod chosen = engine_->copy_method();
  ASSERT_NE(chosen, CopyMethod::kReadWrite);
  dest_->fail_copy = EXDEV;
  ASSERT_TRUE(hydrate_all().is_ok());
  EXPECT_EQ(engine_->copy_method(), CopyMethod::kReadWrite);
  ASSERT_FALSE(fallbacks.empty());
  EXPECT_EQ(fallbacks.front().first, chosen);
  EXPECT_EQ(fallbacks.back().second, CopyMethod::kReadWrite);
  EXPECT_EQ(engine_->bitmap().valid_count(), regions());
  // Each method was tried once, then never again.
  EXPECT_EQ(dest_->copies.load(), static_cast<int>(fallbacks.size()));
  expect_image_matches_model();
}

// EINVAL is about the range (FICLONERANGE wants whole blocks): that span is read and written,
// the method stays for the rest.
TEST_F(KernelCopy, ARangeTheMethodRefusesIsReadAndWrittenAndTheMethodStays) {
  const CopyMethod chosen = engine_->copy_method();
  dest_->fail_copy = EINVAL;
  ASSERT_TRUE(hydrate_all().is_ok());
  EXPECT_EQ(engine_->copy_method(), chosen);
  EXPECT_EQ(dest_->copies.load(), static_cast<int>((regions() + 3) / 4)) << "one try per batch";
  EXPECT_EQ(engine_->counters().regions_copied.load(), regions());
  EXPECT_EQ(engine_->counters().regions_shared.load(), 0u);
  expect_image_matches_model();
}

TEST_F(KernelCopy, AnIoErrorFailsTheStepAndLeavesItsRegionsInvalid) {
  dest_->fail_copy = EIO;
  auto step = engine_->hydrate(0, 4);
  ASSERT_FALSE(step.is_ok());
  EXPECT_EQ(step.status().code(), EIO);
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u);
  EXPECT_NE(engine_->copy_method(), CopyMethod::kReadWrite) << "an I/O error is not a fallback";
  dest_->fail_copy = 0;
  ASSERT_TRUE(hydrate_all().is_ok());
  expect_image_matches_model();
}

TEST_F(KernelCopy, CancelStopsBeforeTheCopy) {
  std::atomic<bool> cancel{true};
  auto step = engine_->hydrate(0, 4, &cancel);
  ASSERT_FALSE(step.is_ok());
  EXPECT_EQ(step.status().code(), ECANCELED);
  EXPECT_EQ(dest_->copies.load(), 0);
  EXPECT_EQ(engine_->bitmap().valid_count(), 0u);
}

// A sparse source: holes are never copied (punched, in case a write before a crash left
// something there), data extents are, whole regions of holes count as skipped.
class KernelCopySparse : public ::testing::Test {
 protected:
  static constexpr uint64_t kRegion = 64 << 10;
  static constexpr uint64_t kSize = 8 * kRegion;
  TempDir dir_;
};

TEST_F(KernelCopySparse, HolesAreNeverCopied) {
  const std::string source = dir_.file("source.img"), dest = dir_.file("dest.img");
  int fd = ::open(source.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, kSize), 0);
  // Data in regions 1 (its second half) and 5 (whole); the rest holes.
  auto a = random_bytes(kRegion / 2, 1), b = random_bytes(kRegion, 2);
  ASSERT_EQ(::pwrite(fd, a.data(), a.size(), kRegion + kRegion / 2), ssize_t(a.size()));
  ASSERT_EQ(::pwrite(fd, b.data(), b.size(), 5 * kRegion), ssize_t(b.size()));
  ::close(fd);
  ASSERT_TRUE(create_clone({source, dest, dir_.file("meta.db"), kRegion, false}).is_ok());
  // Garbage where the source has holes, as an unacknowledged write before a crash leaves it.
  write_file(dest, random_bytes(kSize, 3));

  std::vector<Extent> copied;
  std::mutex mu;
  struct Recording : FaultyDestination {
    using FaultyDestination::FaultyDestination;
    std::function<void(Extent)> on_copy;
    Status copy_from(SourceDevice& s, uint64_t offset, uint64_t length, CopyMethod m) override {
      on_copy({offset, offset + length});
      return FaultyDestination::copy_from(s, offset, length, m);
    }
  };
  OpenOptions options;
  options.engine.commit_period = std::chrono::milliseconds(0);
  options.wrappers.destination = [&](std::unique_ptr<DestinationDevice> real) {
    struct Owning : Recording {
      explicit Owning(std::unique_ptr<DestinationDevice> t) : Recording(*t), held(std::move(t)) {}
      std::unique_ptr<DestinationDevice> held;
    };
    auto wrapped = std::make_unique<Owning>(std::move(real));
    wrapped->on_copy = [&](Extent e) {
      std::lock_guard lock(mu);
      copied.push_back(e);
    };
    return std::unique_ptr<DestinationDevice>(std::move(wrapped));
  };
  auto clone = Clone::open(dir_.file("meta.db"), options);
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  CloneEngine& engine = (*clone)->engine();
  ASSERT_NE(engine.copy_method(), CopyMethod::kReadWrite);
  for (uint64_t r = 0; r < 8; r += 4) ASSERT_TRUE(engine.hydrate(r, 4).is_ok());
  ASSERT_EQ(engine.bitmap().valid_count(), 8u);
  ASSERT_EQ(copied.size(), 2u);
  EXPECT_EQ(copied[0], (Extent{kRegion + kRegion / 2, 2 * kRegion}));
  EXPECT_EQ(copied[1], (Extent{5 * kRegion, 6 * kRegion}));
  const EngineCounters& c = engine.counters();
  EXPECT_EQ(c.regions_copied.load() + c.regions_shared.load(), 2u);
  EXPECT_EQ(c.regions_skipped.load(), 6u);
  EXPECT_EQ(c.bytes_copied.load() + c.bytes_shared.load(), kRegion + kRegion / 2);
  ASSERT_TRUE(engine.close().is_ok());
  EXPECT_TRUE(read_file(dest) == read_file(source)) << "the garbage in the holes was punched";
}

// A destination on a file system that shares extents, modelled: it offers reflink and does it
// by reading the source and writing, so the engine's sharing paths run on any TMPDIR.
class ModelReflinkDestination : public FaultyDestination {
 public:
  explicit ModelReflinkDestination(std::unique_ptr<DestinationDevice> target)
      : FaultyDestination(*target), held_(std::move(target)) {}
  std::atomic<int> shared{0};
  CopyMethod probe_copy(SourceDevice&) override { return CopyMethod::kReflink; }
  Status copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                   CopyMethod method) override {
    if (int err = fail_copy.load()) return Status::from_errno(err, "reflink (injected)");
    if (method != CopyMethod::kReflink)
      return FaultyDestination::copy_from(source, offset, length, method);
    ++shared;
    std::vector<std::byte> bytes(length);
    CLONEFS_RETURN_IF_ERROR(source.read_at(offset, bytes));
    return write_at(offset, bytes);
  }

 private:
  std::unique_ptr<DestinationDevice> held_;
};

class SharedWrites : public ::testing::Test {
 protected:
  static constexpr uint64_t kRegion = 4096;
  static constexpr uint64_t kSize = 16 * kRegion + 1000;
  void SetUp() override {
    source_ = random_bytes(kSize, 9);
    model_ = source_;
    write_file(dir_.file("source.img"), source_);
    ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("dest.img"), dir_.file("meta.db"),
                              kRegion, false})
                    .is_ok());
    OpenOptions options;
    options.engine.commit_period = std::chrono::milliseconds(0);
    options.wrappers.destination = [this](std::unique_ptr<DestinationDevice> real) {
      auto wrapped = std::make_unique<ModelReflinkDestination>(std::move(real));
      dest_ = wrapped.get();
      return std::unique_ptr<DestinationDevice>(std::move(wrapped));
    };
    auto clone = Clone::open(dir_.file("meta.db"), options);
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    clone_ = std::move(*clone);
  }
  CloneEngine& engine() { return clone_->engine(); }
  Status write(uint64_t offset, const std::vector<std::byte>& bytes) {
    std::copy(bytes.begin(), bytes.end(), model_.begin() + static_cast<long>(offset));
    return engine().write(offset, bytes);
  }
  void expect_image_is_model() {
    std::vector<std::byte> image(kSize);
    ASSERT_TRUE(engine().read(0, image).is_ok());
    EXPECT_TRUE(image == model_);
  }
  TempDir dir_;
  std::vector<std::byte> source_, model_;
  ModelReflinkDestination* dest_ = nullptr;
  std::unique_ptr<Clone> clone_;
};

TEST_F(SharedWrites, APartialWriteIntoAnInvalidRegionSharesItThenWritesOverIt) {
  ASSERT_EQ(engine().copy_method(), CopyMethod::kReflink);
  ASSERT_TRUE(write(3 * kRegion + 100, random_bytes(50, 1)).is_ok());
  ASSERT_TRUE(write(kSize - 10, random_bytes(10, 2)).is_ok());  // the short last region
  EXPECT_EQ(dest_->shared.load(), 2);
  EXPECT_EQ(engine().counters().regions_shared.load(), 2u);
  EXPECT_EQ(engine().counters().regions_copied.load(), 0u);
  EXPECT_TRUE(engine().bitmap().test(3));
  // A partial discard too: shared, then the range zeroed.
  ASSERT_TRUE(engine().discard(5 * kRegion + 512, 1024).is_ok());
  std::fill_n(model_.begin() + 5 * kRegion + 512, 1024, std::byte{0});
  EXPECT_EQ(dest_->shared.load(), 3);
  expect_image_is_model();
  ASSERT_TRUE(engine().flush().is_ok());
  std::vector<std::byte> dest = read_file(dir_.file("dest.img"));
  EXPECT_TRUE(std::equal(dest.begin() + 3 * kRegion, dest.begin() + 4 * kRegion,
                         model_.begin() + 3 * kRegion));
}

// Sharing costs per call, not per byte: a hydration step shares at least kMaxKernelCopyBytes.
TEST_F(SharedWrites, AReflinkStepTakesAtLeastTheKernelCopyCapOfRegions) {
  EXPECT_EQ(engine().step_regions(16), kMaxKernelCopyBytes / kRegion);
  EXPECT_EQ(engine().step_regions(100000), 100000u);
}

TEST_F(KernelCopy, CopyingStepsKeepTheBatchAskedFor) {
  open_with({.best_copy_method = CopyMethod::kCopyFileRange});
  EXPECT_EQ(engine_->step_regions(16), 16u);
}

TEST_F(SharedWrites, ARegionThatCannotBeSharedIsReadAndMerged) {
  dest_->fail_copy = EINVAL;
  ASSERT_TRUE(write(3 * kRegion + 100, random_bytes(50, 1)).is_ok());
  EXPECT_EQ(engine().copy_method(), CopyMethod::kReflink) << "EINVAL is about the range";
  EXPECT_EQ(engine().counters().regions_copied.load(), 1u);
  dest_->fail_copy = EXDEV;
  ASSERT_TRUE(write(7 * kRegion + 100, random_bytes(50, 2)).is_ok());
  EXPECT_EQ(engine().copy_method(), CopyMethod::kCopyFileRange);
  EXPECT_EQ(engine().counters().regions_copied.load(), 2u);
  EXPECT_EQ(engine().counters().regions_shared.load(), 0u);
  dest_->fail_copy = EIO;
  EXPECT_EQ(engine().copy_method(), CopyMethod::kCopyFileRange);
  expect_image_is_model();
}

TEST_F(SharedWrites, AnIoErrorWhileSharingFailsTheWriteAndLeavesTheRegionInvalid) {
  dest_->fail_copy = EIO;
  Status written = engine().write(3 * kRegion + 100, random_bytes(50, 1));
  EXPECT_EQ(written.code(), EIO);
  EXPECT_FALSE(engine().bitmap().test(3));
  std::vector<std::byte> image(kSize);
  ASSERT_TRUE(engine().read(0, image).is_ok());
  EXPECT_TRUE(image == source_);
}

TEST(KernelCopyProbe, FilesOnDifferentFileSystemsOrNoFileAreReadAndWritten) {
  TempDir dir;
  write_file(dir.file("a"), random_bytes(8192, 1));
  int source = ::open(dir.file("a").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(source, 0);
  EXPECT_EQ(probe_kernel_copy(source, 8192, -1), CopyMethod::kReadWrite);
  EXPECT_EQ(probe_kernel_copy(-1, 8192, source), CopyMethod::kReadWrite);
  // /dev/null is no regular file: neither call takes it.
  int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(null, 0);
  EXPECT_EQ(probe_kernel_copy(source, 8192, null), CopyMethod::kReadWrite);
  Status copied = kernel_copy(CopyMethod::kCopyFileRange, source, "a", null, "/dev/null", 0, 8192);
  EXPECT_FALSE(copied.is_ok());
  EXPECT_TRUE(method_does_not_apply(copied)) << copied.message();
  EXPECT_NE(copied.message().find("copy_file_range a to /dev/null at offset 0"), std::string::npos)
      << copied.message();
  ::close(null);
  ::close(source);
}

TEST(CopyMethodNames, RoundTrip) {
  for (CopyMethod m : {CopyMethod::kReadWrite, CopyMethod::kCopyFileRange, CopyMethod::kReflink})
    EXPECT_EQ(copy_method_from_string(to_string(m)), m);
  EXPECT_EQ(copy_method_from_string("cp"), std::nullopt);
  EXPECT_EQ(fallback_of(CopyMethod::kReflink), CopyMethod::kCopyFileRange);
  EXPECT_EQ(fallback_of(CopyMethod::kCopyFileRange), CopyMethod::kReadWrite);
}

}  // namespace
}  // namespace clonefs::testing
