// Issue 26: the supervised commit × kill matrix. A serving process (a forked child running the
// engine over real files, with the fault devices and the fault VFS around them) writes, then
// flushes as a user's fsync does; a hook stops it at one step of the commit and the test
// SIGKILLs it there. The test then plays the supervisor and the successor: the surviving-regions
// record (a memfd it holds), the destination opened before the child wrote anything and synced
// before the restart (an error spoils the record), a successor that adopts and answers the
// resent fsync, and a remount without the record. Each cell
// is checked against the contract: every fsync that returned 0 holds, after the successor
// answered and after the remount; a failure is reported to every later fsync; a region reads the
// source or what was written, nothing else.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "engine/clone.h"
#include "engine/surviving_regions.h"
#include "io/posix_devices.h"
#include "meta/metadata_store.h"
#include "support/fault_devices.h"
#include "support/fault_vfs.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kRegion = 4096;
constexpr uint64_t kImageSize = 16 * kRegion;

enum class Step {
  kBeforeSync,            // the commit froze its transaction; the destination sync not begun
  kInsideSync,            // the sync done (or failed), its result not yet seen by the engine
  kBetweenSyncAndCommit,  // the sync succeeded; SQLite not yet asked
  kInsideCommit,          // SQLite writing the commit (first WAL write or sync)
  kCommitReturned,        // SQLite's commit returned (or failed); the engine not yet told
  kAfterCommit,           // the user's fsync was answered
};
enum class Fault { kNone, kDestinationSync, kMetadata };

const char* name(Step step) {
  switch (step) {
    case Step::kBeforeSync:
      return "before the destination sync";
    case Step::kInsideSync:
      return "inside the destination sync";
    case Step::kBetweenSyncAndCommit:
      return "between the sync and the SQLite commit";
    case Step::kInsideCommit:
      return "inside the SQLite commit";
    case Step::kCommitReturned:
      return "SQLite commit returned, not yet seen";
    case Step::kAfterCommit:
      return "after the fsync was answered";
  }
  return "?";
}
const char* name(Fault fault) {
  switch (fault) {
    case Fault::kNone:
      return "none";
    case Fault::kDestinationSync:
      return "destination sync error";
    case Fault::kMetadata:
      return "SQLite error";
  }
  return "?";
}

struct Cell {
  Step step;
  Fault fault;
};

// The child's word to the test: 'S' stopped at the step (the fsync unanswered), or 'A' and the
// fsync's errno (0: it succeeded). Then it waits for its SIGKILL.
int g_word_fd = -1;
[[noreturn]] void stop_here() {
  (void)!::write(g_word_fd, "S", 1);
  for (;;) ::pause();
}

// A clone's engine over real files, the fault wrappers around them.
struct OpenedClone {
  std::unique_ptr<MetadataStore> meta;
  std::unique_ptr<SourceDevice> real_source;
  std::unique_ptr<DestinationDevice> real_dest;
  std::unique_ptr<FaultyDestination> dest;
  std::unique_ptr<RecordingStore> store;
  std::unique_ptr<CloneEngine> engine;

  static std::unique_ptr<OpenedClone> open(const TempDir& dir, const char* vfs) {
    auto c = std::make_unique<OpenedClone>();
    auto meta = MetadataStore::open(dir.file("meta.db"), {.vfs = vfs});
    auto source = open_source(dir.file("source.img"));
    auto dest = open_destination(dir.file("dest.img"), std::nullopt);
    if (!meta || !source || !dest) return nullptr;
    c->meta = std::move(*meta);
    c->real_source = std::move(*source);
    c->real_dest = std::move(*dest);
    c->dest = std::make_unique<FaultyDestination>(*c->real_dest);
    c->store = std::make_unique<RecordingStore>(*c->meta);
    auto geometry = Geometry::make(kImageSize, kRegion);
    auto engine =
        CloneEngine::start(*geometry, *c->real_source, *c->dest, *c->store,
                           {.copy_on_read = false, .commit_period = std::chrono::milliseconds(0)});
    if (!engine) return nullptr;
    c->engine = std::move(*engine);
    return c;
  }
};

const std::vector<std::byte> kPartial = random_bytes(333, 501);
const std::vector<std::byte> kWhole = random_bytes(kRegion, 502);
constexpr uint64_t kPartialAt = 3 * kRegion + 100;
constexpr uint64_t kWholeAt = 9 * kRegion;

// The serving process: writes two regions it makes valid, then the user's fsync.
[[noreturn]] void serve_until_killed(const TempDir& dir, int record_fd, Cell cell) {
  FaultVfs::install();
  auto c = OpenedClone::open(dir, FaultVfs::kName);
  if (!c) ::_exit(2);
  auto record = SurvivingRegions::map(record_fd, c->engine->geometry());
  if (!record) ::_exit(3);
  c->engine->adopt_surviving(std::move(*record));
  if (!c->engine->write(kPartialAt, kPartial).is_ok()) ::_exit(4);
  if (!c->engine->write(kWholeAt, kWhole).is_ok()) ::_exit(5);
  if (cell.fault == Fault::kDestinationSync) c->dest->fail_sync = EIO;
  if (cell.fault == Fault::kMetadata) FaultVfs::fail_with(SQLITE_IOERR_WRITE);
  switch (cell.step) {
    case Step::kBeforeSync:
      c->dest->before_sync = stop_here;
      break;
    case Step::kInsideSync:
      c->dest->after_sync = stop_here;
      break;
    case Step::kBetweenSyncAndCommit:
      c->store->before_commit = stop_here;
      break;
    case Step::kInsideCommit:
      FaultVfs::on_write_or_sync(stop_here);
      break;
    case Step::kCommitReturned:
      c->store->after_commit = stop_here;
      break;
    case Step::kAfterCommit:
      break;
  }
  Status flushed = c->engine->flush();
  const int err = flushed.is_ok() ? 0 : (flushed.code() != 0 ? flushed.code() : EIO);
  char word[1 + sizeof err] = {'A'};
  std::memcpy(word + 1, &err, sizeof err);
  (void)!::write(g_word_fd, word, sizeof word);
  for (;;) ::pause();
}

// What the image must read: the source with the writes over it.
std::vector<std::byte> written_image(const std::vector<std::byte>& source) {
  std::vector<std::byte> image = source;
  std::copy(kPartial.begin(), kPartial.end(), image.begin() + kPartialAt);
  std::copy(kWhole.begin(), kWhole.end(), image.begin() + kWholeAt);
  return image;
}

// Whether each region reads either the source or what was written, and whether all the writes
// read back. A clone in fail mode reads nothing (EIO), which the contract allows.
struct Reading {
  bool readable = true;
  bool only_source_or_written = true;
  bool writes_kept = true;
};
Reading read_back(CloneEngine& engine, const std::vector<std::byte>& source) {
  const std::vector<std::byte> written = written_image(source);
  Reading r;
  for (uint64_t region = 0; region < kImageSize / kRegion; ++region) {
    std::vector<std::byte> got(kRegion);
    if (!engine.read(region * kRegion, got).is_ok()) {
      r.readable = r.writes_kept = false;
      continue;
    }
    const auto at = static_cast<long>(region * kRegion);
    const bool is_source = std::equal(got.begin(), got.end(), source.begin() + at);
    const bool is_written = std::equal(got.begin(), got.end(), written.begin() + at);
    if (!is_source && !is_written) r.only_source_or_written = false;
    if (!is_written) r.writes_kept = false;
  }
  return r;
}

std::string describe(int err) { return err == 0 ? "0" : std::strerror(err); }

class CommitKillMatrix : public ::testing::TestWithParam<Cell> {};

TEST_P(CommitKillMatrix, EveryFsyncThatReturnedZeroHoldsAndEveryFailureIsReportedAfterIt) {
  const Cell cell = GetParam();
  TempDir dir;
  const auto source = random_bytes(kImageSize, 500);
  write_file(dir.file("source.img"), source);
  ASSERT_TRUE(create_clone({dir.file("source.img"), dir.file("dest.img"), dir.file("meta.db"),
                            kRegion, false})
                  .is_ok());
  // What the supervisor holds: the record, and the destination opened before anything is written.
  const int record_fd = ::memfd_create("matrix-record", MFD_CLOEXEC);
  ASSERT_GE(record_fd, 0);
  const int witness = ::open(dir.file("dest.img").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(witness, 0);
  int word[2];
  ASSERT_EQ(::pipe2(word, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(word[0]);
    g_word_fd = word[1];
    serve_until_killed(dir, record_fd, cell);
  }
  ::close(word[1]);
  char got[1 + sizeof(int)] = {};
  const ssize_t n = ::read(word[0], got, sizeof got);
  ::close(word[0]);
  ::kill(child, SIGKILL);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_GE(n, 1) << "the serving process ended before its fsync: exit "
                  << (WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
  const bool stopped = got[0] == 'S';
  int answered = -1;  // the fsync's errno if it was answered before the kill
  if (!stopped) std::memcpy(&answered, got + 1, sizeof answered);

  // The supervisor syncs the held description before the restart; the successor adopts and
  // answers the resent fsync.
  if (::fdatasync(witness) != 0) {
    ASSERT_TRUE(SurvivingRegions::spoil(record_fd).is_ok());
  }
  auto successor = OpenedClone::open(dir, nullptr);
  ASSERT_TRUE(successor);
  auto record = SurvivingRegions::map(record_fd, successor->engine->geometry());
  ASSERT_TRUE(record.is_ok()) << record.status().message();
  successor->engine->adopt_surviving(std::move(*record));
  const Status resent = successor->engine->flush();
  const Status later = successor->engine->flush();
  const Reading live = read_back(*successor->engine, source);
  (void)successor->engine->close();
  successor.reset();
  // The remount: the metadata alone, no record.
  auto remounted = OpenedClone::open(dir, nullptr);
  ASSERT_TRUE(remounted);
  const Reading after = read_back(*remounted->engine, source);
  remounted.reset();
  ::close(witness);
  ::close(record_fd);

  std::printf("| %-40s | %-22s | %-10s | %-12s | %-11s | %-14s |\n", name(cell.step),
              name(cell.fault), stopped ? "killed" : describe(answered).c_str(),
              describe(resent.is_ok() ? 0 : resent.code()).c_str(),
              !live.readable     ? "EIO"
              : live.writes_kept ? "yes"
                                 : "no",
              after.writes_kept ? "yes" : "no");
  EXPECT_TRUE(after.readable) << "the remounted clone cannot be read";
  EXPECT_TRUE(live.only_source_or_written) << "a region reads neither the source nor the writes";
  EXPECT_TRUE(after.only_source_or_written)
      << "after the remount a region reads neither the source nor the writes";
  if (answered == 0) {
    EXPECT_TRUE(live.writes_kept) << "an fsync returned 0, and the successor lost its writes";
    EXPECT_TRUE(after.writes_kept) << "an fsync returned 0, and the remount lost its writes";
  }
  if (answered > 0) {
    EXPECT_FALSE(resent.is_ok()) << "a failed fsync was followed by one that succeeded";
  }
  if (resent.is_ok()) {
    EXPECT_TRUE(live.writes_kept) << "the resent fsync returned 0 without the writes";
    EXPECT_TRUE(after.writes_kept) << "the resent fsync returned 0, the remount lost the writes";
  } else {
    EXPECT_FALSE(later.is_ok()) << "a failed fsync was followed by one that succeeded";
  }
}

std::vector<Cell> all_cells() {
  std::vector<Cell> cells;
  for (Fault fault : {Fault::kNone, Fault::kDestinationSync, Fault::kMetadata}) {
    for (Step step : {Step::kBeforeSync, Step::kInsideSync, Step::kBetweenSyncAndCommit,
                      Step::kInsideCommit, Step::kCommitReturned, Step::kAfterCommit}) {
      cells.push_back({step, fault});
    }
  }
  return cells;
}

INSTANTIATE_TEST_SUITE_P(Cells, CommitKillMatrix, ::testing::ValuesIn(all_cells()),
                         [](const auto& info) {
                           return "step" + std::to_string(static_cast<int>(info.param.step)) +
                                  "_fault" + std::to_string(static_cast<int>(info.param.fault));
                         });

}  // namespace
}  // namespace clonefs::testing
