// Random user I/O with hydration running and faults switched on and off mid-run, checked against
// a reference model after every step: whenever an fsync returned 0, everything written before it
// reads back — in this run, after a failed commit rolled back, and after remounting. Nothing ever
// reads anything but the source or data written. Run under TSAN and ASAN too (scripts/test.sh).
// CLONEFS_STRESS_SEED=N replays one run.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <random>

#include "engine/clone.h"
#include "engine/hydrator.h"
#include "support/fault_devices.h"
#include "support/fault_vfs.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kRegion = 4096;
constexpr uint64_t kRegions = 48;
constexpr uint64_t kSize = kRegions * kRegion;

class OwnedDestination : private std::unique_ptr<DestinationDevice>, public FaultyDestination {
 public:
  explicit OwnedDestination(std::unique_ptr<DestinationDevice> d)
      : std::unique_ptr<DestinationDevice>(std::move(d)), FaultyDestination(**this) {}
};
class OwnedSource : private std::unique_ptr<SourceDevice>, public FaultySource {
 public:
  explicit OwnedSource(std::unique_ptr<SourceDevice> s)
      : std::unique_ptr<SourceDevice>(std::move(s)), FaultySource(**this) {}
};

class FaultStress : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultVfs::install();
    source_ = random_bytes(kSize, 77);
    write_file(dir_.file("source.img"), source_);
    ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("dest.img"), dir_.file("meta.db"),
                              kRegion, false})
                    .is_ok());
    current_ = acked_ = source_;
  }
  void TearDown() override {
    FaultVfs::fail_with(0);
    hydrator_.reset();
    clone_.reset();
  }

  void mount() {
    OpenOptions options;
    options.engine.commit_period =
        std::chrono::milliseconds(0);  // commits only where the model sees them
    options.metadata.vfs = FaultVfs::kName;
    options.wrappers.source = [this](std::unique_ptr<SourceDevice> s) {
      auto owned = std::make_unique<OwnedSource>(std::move(s));
      src_ = owned.get();
      return std::unique_ptr<SourceDevice>(std::move(owned));
    };
    options.wrappers.destination = [this](std::unique_ptr<DestinationDevice> d) {
      auto owned = std::make_unique<OwnedDestination>(std::move(d));
      dst_ = owned.get();
      return std::unique_ptr<DestinationDevice>(std::move(owned));
    };
    auto clone = Clone::open(dir_.file("meta.db"), options);
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    clone_ = std::move(*clone);
    hydrator_ = std::make_unique<Hydrator>(clone_->engine(), HydrationSettings{.batch = 2}, 2,
                                           /*max_retries=*/1);
    check_every_region("after mounting");
  }
  void unmount() {
    hydrator_.reset();
    Status closed = clone_->engine().close();
    if (closed.is_ok()) acked_ = current_;  // the final commit acknowledges like an fsync
    faults_ = 0;
    FaultVfs::fail_with(0);
    clone_.reset();
  }
  CloneEngine& engine() { return clone_->engine(); }

  // The model's own look at the whole image, with the source's fault (if on) held off.
  std::vector<std::byte> read_all() {
    std::vector<std::byte> got(kSize);
    int source_fault = src_->fail_read.exchange(0);
    Status st = engine().read(0, got);
    src_->fail_read = source_fault;
    EXPECT_TRUE(st.is_ok()) << st.message();
    return got;
  }
  static bool same(const std::vector<std::byte>& a, const std::vector<std::byte>& b, uint64_t r) {
    return std::equal(a.begin() + static_cast<long>(r * kRegion),
                      a.begin() + static_cast<long>((r + 1) * kRegion),
                      b.begin() + static_cast<long>(r * kRegion));
  }
  void copy_region(std::vector<std::byte>& to, const std::vector<std::byte>& from, uint64_t r) {
    std::copy_n(from.begin() + static_cast<long>(r * kRegion), kRegion,
                to.begin() + static_cast<long>(r * kRegion));
  }

  // Invalid regions read the source, and none of them holds anything an fsync acknowledged;
  // valid ones read the model.
  // Validity is sampled before the read: hydration may make a region valid during it (reading
  // the source either way), but only this thread's flushes can make one invalid again.
  std::vector<bool> valid_regions() {
    std::vector<bool> valid(kRegions);
    for (uint64_t r = 0; r < kRegions; ++r) valid[r] = engine().bitmap().test(r);
    return valid;
  }
  void check_every_region(const std::string& when) {
    auto valid = valid_regions();
    auto got = read_all();
    for (uint64_t r = 0; r < kRegions; ++r) {
      if (valid[r]) {
        ASSERT_TRUE(same(got, current_, r))
            << when << ": valid region " << r << " does not read what was written"
            << " (it reads "
            << (same(got, source_, r)  ? "the source"
                : same(got, acked_, r) ? "the last acknowledged data"
                                       : "something else")
            << ")";
      } else {
        ASSERT_TRUE(same(got, source_, r))
            << when << ": invalid region " << r << " does not read the source";
        ASSERT_TRUE(same(acked_, source_, r))
            << when << ": region " << r << " lost data an fsync acknowledged";
        copy_region(current_, source_, r);
      }
    }
  }

  // After a failed call over [offset, offset+length): each region it touched reads either its old
  // or its new content (a call that fails part-way may have done the regions before the failure).
  void settle_failed(uint64_t offset, uint64_t length, const std::vector<std::byte>& wanted,
                     const std::string& op) {
    auto valid = valid_regions();
    auto got = read_all();
    for (uint64_t r = offset / kRegion; r <= (offset + length - 1) / kRegion; ++r) {
      bool old_content = same(got, current_, r) || (!valid[r] && same(got, source_, r));
      ASSERT_TRUE(old_content || same(got, wanted, r))
          << op << " failed and left region " << r << " neither old nor new";
      copy_region(current_, got, r);
    }
  }

  void toggle_fault(std::mt19937_64& rng) {
    switch (rng() % 8) {  // 5 faults; all off 3 times in 8, so commits also succeed between faults
      case 0:
        dst_->fail_write = dst_->fail_write ? 0 : EIO;
        break;
      case 1:
        dst_->fail_sync = dst_->fail_sync ? 0 : EIO;
        break;
      case 2:
        src_->fail_read = src_->fail_read ? 0 : EIO;
        break;
      case 3:
        FaultVfs::fail_with(faults_ ? 0 : SQLITE_FULL);
        faults_ = !faults_;
        break;
      case 4:
        FaultVfs::fail_with(faults_ ? 0 : SQLITE_IOERR_WRITE);
        faults_ = !faults_;
        break;
      default:  // all off
        dst_->fail_write = 0;
        dst_->fail_sync = 0;
        src_->fail_read = 0;
        FaultVfs::fail_with(0);
        faults_ = 0;
    }
  }

  void run(uint64_t seed, int steps) {
    std::mt19937_64 rng(seed);
    mount();
    for (int step = 0; step < steps && !HasFatalFailure(); ++step) {
      const std::string at = "step " + std::to_string(step);
      uint64_t offset = rng() % kSize;
      uint64_t length = 1 + rng() % std::min<uint64_t>(kSize - offset, 2 * kRegion + 100);
      switch (rng() % 40 < 39 ? rng() % 9 : 9) {
        case 0:
        case 1:
        case 2: {
          auto bytes = random_bytes(length, rng());
          std::vector<std::byte> wanted = current_;
          std::copy(bytes.begin(), bytes.end(), wanted.begin() + static_cast<long>(offset));
          if (engine().write(offset, bytes).is_ok())
            current_ = std::move(wanted);
          else
            settle_failed(offset, length, wanted, at + " write");
          break;
        }
        case 3: {
          std::vector<std::byte> wanted = current_;
          std::fill_n(wanted.begin() + static_cast<long>(offset), length, std::byte{0});
          if (engine().discard(offset, length).is_ok())
            current_ = std::move(wanted);
          else
            settle_failed(offset, length, wanted, at + " discard");
          break;
        }
        case 4: {
          std::vector<std::byte> got(length);
          if (engine().read(offset, got).is_ok()) {
            ASSERT_TRUE(
                std::equal(got.begin(), got.end(), current_.begin() + static_cast<long>(offset)))
                << at << ": read of " << length << " bytes at " << offset
                << " differs from the model";
          }
          break;
        }
        case 5:
        case 6: {
          Status flushed = engine().flush();
          ++flushes_;
          if (flushed.is_ok()) {
            ASSERT_EQ(engine().status().mode, MetadataMode::kReadWrite)
                << at << ": a flush succeeded in " << to_string(engine().status().mode) << " mode";
            acked_ = current_;
          } else {
            ++failed_flushes_;
            if (engine().status().mode == MetadataMode::kFail) break;
            ASSERT_EQ(engine().status().mode, MetadataMode::kReadOnly)
                << at << ": flush failed but mode is rw: " << flushed.message();
            check_every_region(at + ", after a failed flush");
          }
          break;
        }
        case 7:
        case 8:
          toggle_fault(rng);
          break;
        default:
          unmount();
          ++remounts_;
          mount();
      }
    }
    if (!HasFatalFailure()) {
      unmount();
      mount();
    }
  }

  TempDir dir_;
  std::vector<std::byte> source_, current_, acked_;
  std::unique_ptr<Clone> clone_;
  std::unique_ptr<Hydrator> hydrator_;
  OwnedSource* src_ = nullptr;
  OwnedDestination* dst_ = nullptr;
  int faults_ = 0;  // a metadata fault is on
  int flushes_ = 0, failed_flushes_ = 0, remounts_ = 0;
};

TEST_F(FaultStress, AcknowledgedWritesSurviveFaultsRollbacksAndRemounts) {
  uint64_t seed = std::random_device{}();
  if (const char* fixed = std::getenv("CLONEFS_STRESS_SEED"))
    seed = std::strtoull(fixed, nullptr, 10);
  SCOPED_TRACE("CLONEFS_STRESS_SEED=" + std::to_string(seed));
  run(seed, 3000);
  std::printf("fault stress: seed %llu, %d flushes (%d failed), %d remounts\n",
              static_cast<unsigned long long>(seed), flushes_, failed_flushes_, remounts_);
  EXPECT_GT(failed_flushes_, 0) << "no fault ever reached a commit: the stress tested nothing";
}

}  // namespace
}  // namespace clonefs::testing
