// docs/SEMANTICS.md "When things fail", cell by cell: every fault at every moment. For each cell
// the fault is switched on for the moment alone, then the clone must be in the mode the document
// names, every later flush must report a failed commit, status must say why, the final close
// (what unmount waits for) must fail when a commit did, and after reopening everything an fsync
// acknowledged reads back while nothing else reads anything but the source or data written.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "engine/clone.h"
#include "engine/hydrator.h"
#include "support/fault_devices.h"
#include "support/fault_vfs.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

enum class Fault {
  kDestinationWrite,
  kDestinationSync,
  kMetadataIoError,
  kMetadataFull,
  kSourceRead
};
enum class Moment { kUserWrite, kPeriodicCommit, kUserFsync, kHydration, kDiscard, kUnmount };

const char* name(Fault f) {
  switch (f) {
    case Fault::kDestinationWrite:
      return "DestinationWrite";
    case Fault::kDestinationSync:
      return "DestinationSync";
    case Fault::kMetadataIoError:
      return "MetadataIoError";
    case Fault::kMetadataFull:
      return "MetadataFull";
    case Fault::kSourceRead:
      return "SourceRead";
  }
  return "?";
}
const char* name(Moment m) {
  switch (m) {
    case Moment::kUserWrite:
      return "UserWrite";
    case Moment::kPeriodicCommit:
      return "PeriodicCommit";
    case Moment::kUserFsync:
      return "UserFsync";
    case Moment::kHydration:
      return "Hydration";
    case Moment::kDiscard:
      return "Discard";
    case Moment::kUnmount:
      return "Unmount";
  }
  return "?";
}

bool hits_commit(Fault f) {
  return f == Fault::kDestinationSync || f == Fault::kMetadataIoError || f == Fault::kMetadataFull;
}
// Whether a commit runs while the fault is on: then it must fail, and the failure must stick.
bool commit_fails(Fault f, Moment m) {
  return hits_commit(f) && m != Moment::kUserWrite && m != Moment::kDiscard;
}
// Whether the moment's own call must return the error.
bool call_fails(Fault f, Moment m) {
  switch (m) {
    case Moment::kUserWrite:
    case Moment::kDiscard:
      return f == Fault::kDestinationWrite || f == Fault::kSourceRead;
    case Moment::kUserFsync:
    case Moment::kUnmount:
      return hits_commit(f);
    default:
      return false;
  }
}

// A device wrapper that owns the device it wraps (Clone::open hands over ownership).
template <typename Device, typename Faulty>
struct Owning {
  std::unique_ptr<Device> owned;
};
class OwnedFaultyDestination : private Owning<DestinationDevice, FaultyDestination>,
                               public FaultyDestination {
 public:
  explicit OwnedFaultyDestination(std::unique_ptr<DestinationDevice> d)
      : Owning{std::move(d)}, FaultyDestination(*owned) {}
};
class OwnedFaultySource : private Owning<SourceDevice, FaultySource>, public FaultySource {
 public:
  explicit OwnedFaultySource(std::unique_ptr<SourceDevice> s)
      : Owning{std::move(s)}, FaultySource(*owned) {}
};

uint64_t g_cells_run = 0;
uint64_t g_device_faults = 0;

class FaultMatrix : public ::testing::TestWithParam<std::tuple<Fault, Moment>> {
 protected:
  static constexpr uint64_t kRegion = 4096;
  static constexpr uint64_t kRegions = 16;
  static constexpr uint64_t kSize = kRegions * kRegion;

  void SetUp() override {
    FaultVfs::install();
    source_bytes_ = random_bytes(kSize, 5);
    write_file(dir_.file("source.img"), source_bytes_);
    ASSERT_TRUE(create_clone({dir_.file("source.img"), dir_.file("dest.img"), dir_.file("meta.db"),
                              kRegion, false})
                    .is_ok());
    acknowledged_ = source_bytes_;
    attempted_ = source_bytes_;
  }
  void TearDown() override {
    FaultVfs::fail_with(0);
    close_clone();
    ++g_cells_run;
  }
  // Drops the clone without a final commit, counting the faults its devices injected.
  void close_clone() {
    if (dest_) g_device_faults += static_cast<uint64_t>(dest_->injected.load());
    if (source_) g_device_faults += static_cast<uint64_t>(source_->injected.load());
    dest_ = nullptr;
    source_ = nullptr;
    clone_.reset();
  }

  void open(std::chrono::milliseconds commit_period, bool with_faults) {
    OpenOptions options;
    options.engine.commit_period = commit_period;
    options.metadata.vfs = FaultVfs::kName;
    if (with_faults) {
      options.wrappers.source = [this](std::unique_ptr<SourceDevice> s) {
        auto faulty = std::make_unique<OwnedFaultySource>(std::move(s));
        source_ = faulty.get();
        return std::unique_ptr<SourceDevice>(std::move(faulty));
      };
      options.wrappers.destination = [this](std::unique_ptr<DestinationDevice> d) {
        auto faulty = std::make_unique<OwnedFaultyDestination>(std::move(d));
        dest_ = faulty.get();
        return std::unique_ptr<DestinationDevice>(std::move(faulty));
      };
    }
    auto clone = Clone::open(dir_.file("meta.db"), options);
    ASSERT_TRUE(clone.is_ok()) << clone.status().message();
    clone_ = std::move(*clone);
  }
  CloneEngine& engine() { return clone_->engine(); }

  void arm(Fault f) { set(f, true); }
  void disarm(Fault f) { set(f, false); }
  void set(Fault f, bool on) {
    switch (f) {
      case Fault::kDestinationWrite:
        dest_->fail_write = on ? EIO : 0;
        break;
      case Fault::kDestinationSync:
        dest_->fail_sync = on ? EIO : 0;
        break;
      case Fault::kMetadataIoError:
        FaultVfs::fail_with(on ? SQLITE_IOERR_WRITE : 0);
        break;
      case Fault::kMetadataFull:
        FaultVfs::fail_with(on ? SQLITE_FULL : 0);
        break;
      case Fault::kSourceRead:
        source_->fail_read = on ? EIO : 0;
        break;
    }
  }

  // A write the clone may or may not keep (no fsync acknowledged it yet). One that failed had
  // no effect: the injected faults fail a call before it changes anything.
  Status attempt_write(uint64_t offset, const std::vector<std::byte>& bytes) {
    Status st = engine().write(offset, bytes);
    if (st.is_ok())
      std::copy(bytes.begin(), bytes.end(), attempted_.begin() + static_cast<long>(offset));
    return st;
  }
  Status attempt_discard(uint64_t offset, uint64_t length) {
    Status st = engine().discard(offset, length);
    if (st.is_ok())
      std::fill_n(attempted_.begin() + static_cast<long>(offset), length, std::byte{0});
    return st;
  }

  // Every byte reads what an fsync acknowledged, or else the source or data written since.
  void expect_nothing_acknowledged_lost(const std::string& when) {
    std::vector<std::byte> got(kSize);
    Status st = engine().read(0, got);
    ASSERT_TRUE(st.is_ok()) << when << ": " << st.message();
    for (uint64_t i = 0; i < kSize; ++i) {
      bool ok = got[i] == acknowledged_[i] || got[i] == attempted_[i] ||
                (!pinned_[i] && got[i] == source_bytes_[i]);
      if (!ok) {
        ADD_FAILURE() << when << ": byte " << i << " (region " << i / kRegion
                      << ") reads neither what an fsync "
                      << "acknowledged nor the source nor data written";
        return;
      }
    }
  }
  // The writes so far were acknowledged by a flush that returned 0.
  void acknowledge() {
    acknowledged_ = attempted_;
    pinned_.assign(kSize, true);
  }

  TempDir dir_;
  std::vector<std::byte> source_bytes_, acknowledged_, attempted_;
  std::vector<bool> pinned_ = std::vector<bool>(kSize, false);
  std::unique_ptr<Clone> clone_;
  OwnedFaultyDestination* dest_ = nullptr;
  OwnedFaultySource* source_ = nullptr;
};

TEST_P(FaultMatrix, ModeFlushesStatusUnmountAndData) {
  const auto [fault, moment] = GetParam();
  const bool periodic = moment == Moment::kPeriodicCommit || moment == Moment::kHydration;
  open(periodic ? std::chrono::milliseconds(5) : std::chrono::milliseconds(0), true);
  if (HasFatalFailure()) return;

  // Acknowledged before the fault: regions 0-3 written (whole and partial), fsynced.
  ASSERT_TRUE(attempt_write(0, random_bytes(kRegion, 1)).is_ok());
  ASSERT_TRUE(attempt_write(kRegion + 100, random_bytes(300, 2)).is_ok());
  ASSERT_TRUE(attempt_write(3 * kRegion - 10, random_bytes(kRegion, 3)).is_ok());
  ASSERT_TRUE(engine().flush().is_ok());
  acknowledge();

  Status call = Status::ok();
  switch (moment) {
    case Moment::kUserWrite:
      arm(fault);
      call = attempt_write(6 * kRegion + 7, random_bytes(500, 4));  // a never-touched region
      if (call.is_ok()) call = attempt_write(7 * kRegion, random_bytes(kRegion, 5));
      disarm(fault);
      break;
    case Moment::kPeriodicCommit:
    case Moment::kUserFsync:
    case Moment::kUnmount: {
      // A commit fault is on before the writes, or the periodic commit could record them first.
      if (hits_commit(fault)) arm(fault);
      ASSERT_TRUE(attempt_write(6 * kRegion + 7, random_bytes(500, 4)).is_ok());
      ASSERT_TRUE(attempt_write(kRegion, random_bytes(20, 6)).is_ok());  // an already valid region
      arm(fault);
      if (moment == Moment::kUserFsync) call = engine().flush();
      if (moment == Moment::kUnmount) call = engine().close();
      if (moment == Moment::kPeriodicCommit) {  // until the periodic commit has ended, either way
        const uint64_t commits = engine().counters().metadata_commits.load();
        for (int i = 0; i < 400 && engine().status().mode == MetadataMode::kReadWrite &&
                        engine().counters().metadata_commits.load() == commits;
             ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      disarm(fault);
      break;
    }
    case Moment::kHydration: {
      arm(fault);
      {
        Hydrator hydrator(engine(), {.batch = 4}, 2, /*max_retries=*/1);
        for (int i = 0; i < 400; ++i) {
          HydrationStatus h = hydrator.status();
          if (h.complete || h.failed_regions > 0 ||
              engine().status().mode != MetadataMode::kReadWrite)
            break;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (hits_commit(fault)) {  // the periodic commit must have met the fault by now
          for (int i = 0; i < 400 && engine().status().mode == MetadataMode::kReadWrite; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
        }
        hydrator.stop();
      }
      disarm(fault);
      break;
    }
    case Moment::kDiscard:
      arm(fault);
      call = attempt_discard(8 * kRegion + 100, 1000);  // part of a never-touched region
      if (call.is_ok()) call = attempt_discard(9 * kRegion, 2 * kRegion);  // whole regions
      disarm(fault);
      break;
  }

  const std::string cell = std::string(name(fault)) + " at " + name(moment);
  EXPECT_EQ(!call.is_ok(), call_fails(fault, moment)) << cell << ": " << call.message();
  if (!call.is_ok()) {
    EXPECT_EQ(call.code(), fault == Fault::kMetadataFull ? ENOSPC : EIO) << call.message();
  }

  EngineStatus status = engine().status();
  if (commit_fails(fault, moment)) {
    EXPECT_NE(status.mode, MetadataMode::kReadWrite) << cell;
    EXPECT_NE(status.mode_reason.find("commit failed"), std::string::npos)
        << cell << ": " << status.mode_reason;
    if (moment != Moment::kUnmount) {
      for (int i = 0; i < 2; ++i) {
        Status later = engine().flush();
        EXPECT_EQ(later.code(), EIO)
            << cell << ": a flush after the failed commit said " << later.message();
      }
      Status closed = engine().close();
      EXPECT_EQ(closed.code(), EIO) << cell << ": unmount must fail after a failed commit";
      EXPECT_NE(closed.message().find("commit failed"), std::string::npos) << closed.message();
    }
  } else if (moment != Moment::kUnmount) {
    EXPECT_EQ(status.mode, MetadataMode::kReadWrite) << cell << ": " << status.mode_reason;
    expect_nothing_acknowledged_lost(cell + ", still mounted");
    Status flushed = engine().flush();
    EXPECT_TRUE(flushed.is_ok()) << cell << ": " << flushed.message();
    if (flushed.is_ok()) acknowledge();
    Status closed = engine().close();
    EXPECT_TRUE(closed.is_ok()) << cell << ": " << closed.message();
  } else {
    EXPECT_EQ(status.mode, MetadataMode::kReadWrite) << cell << ": " << status.mode_reason;
    if (call.is_ok()) acknowledge();  // the final commit is what unmount acknowledges
  }

  close_clone();
  open(std::chrono::milliseconds(0), false);
  if (HasFatalFailure()) return;
  expect_nothing_acknowledged_lost(cell + ", after remount");
}

std::string cell_name(const ::testing::TestParamInfo<std::tuple<Fault, Moment>>& info) {
  return std::string(name(std::get<0>(info.param))) + "_at_" + name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    EveryCell, FaultMatrix,
    ::testing::Combine(::testing::Values(Fault::kDestinationWrite, Fault::kDestinationSync,
                                         Fault::kMetadataIoError, Fault::kMetadataFull,
                                         Fault::kSourceRead),
                       ::testing::Values(Moment::kUserWrite, Moment::kPeriodicCommit,
                                         Moment::kUserFsync, Moment::kHydration, Moment::kDiscard,
                                         Moment::kUnmount)),
    cell_name);

// Reports what the matrix did, for the CI log.
class MatrixReport : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_cells_run == 0) return;
    std::printf("fault matrix: %llu cells, %llu device faults and %llu metadata faults injected\n",
                static_cast<unsigned long long>(g_cells_run),
                static_cast<unsigned long long>(g_device_faults),
                static_cast<unsigned long long>(FaultVfs::injected()));
  }
};
const auto* const kReport = ::testing::AddGlobalTestEnvironment(new MatrixReport);

}  // namespace
}  // namespace clonefs::testing
