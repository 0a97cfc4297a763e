// What the files could hold after a power loss at a point of the trace.
//
// The disk model replays the trace one event at a time. Per file it keeps the durable content
// (as of that file's last sync) and the operations pending since: writes and punches cut into
// 512-byte sector pieces, each carrying the sector's whole content right after the operation (a
// sector reaches the disk whole, holding what the page cache held when it was written back), and
// the file's creations, deletions and truncations, which persist in order (the file system
// journals them) but only up to a prefix. Files are independent: a sync of one says nothing
// about the others. A state is the durable content plus a chosen subset of the pending pieces
// and a prefix of the pending creations/deletions/truncations, applied in trace order.
//
// A file created (the WAL) is durable at its first sync: SQLite syncs the directory then,
// invisibly to the VFS shim.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "crash/trace.h"

namespace clonefs::crash {

struct FileImage {
  bool exists = false;
  std::vector<std::byte> bytes;
};
using FileSet = std::array<FileImage, kTracedFiles>;

struct CrashState {
  FileSet files;
  std::string how;  // "drop pending", "keep pending", "random #3", "exhaustive 5/16"
};

// 64-bit hash of the files' existence and contents, to skip states already checked.
uint64_t fingerprint(const FileSet& files);

class DiskModel {
 public:
  explicit DiskModel(FileSet durable);

  // Advances past one trace event (markers are ignored).
  void apply(const Event& event);

  // Nothing pending persists: the deterministic state that catches a missing sync.
  CrashState drop_pending() const;
  // Everything persists: what a killed process (not a power loss) leaves.
  CrashState keep_pending() const;
  // A seeded random subset; with `garble`, some kept database/WAL sectors are torn to junk
  // (the destination's sectors are not: a torn user sector would break rule 4 on any engine).
  CrashState random_pending(std::mt19937_64& rng, bool garble, const std::string& how) const;
  // All subsets, when there are at most `limit` of them: the count, or 0 if there are more.
  uint64_t enumeration_size(uint64_t limit) const;
  CrashState enumerated(uint64_t index) const;  // index < enumeration_size()

  size_t pending_pieces() const;

 private:
  enum class PendingKind { kPiece, kTruncate, kCreate, kDelete };
  struct Pending {
    PendingKind kind;
    uint64_t incarnation;  // which life of the file (creations and deletions start a new one)
    uint64_t offset;       // piece: sector start; truncate: new size
    std::vector<std::byte> bytes;
    // The piece's bytes the operation wrote. Only they may be torn: the unix VFS declares
    // SQLITE_IOCAP_POWERSAFE_OVERWRITE, so SQLite relies on a write never damaging its neighbours.
    uint64_t written_begin = 0, written_end = 0;
  };
  struct FileModel {
    FileImage durable;
    uint64_t durable_incarnation = 0;
    FileImage current;
    uint64_t incarnation = 0;
    uint64_t lives = 0;
    std::vector<Pending> pending;
    size_t pieces = 0;
    size_t metadata_ops = 0;
  };
  // How one state treats one file's pending operations.
  struct Choice {
    size_t metadata_prefix = 0;
    std::vector<bool> keep;    // per piece
    std::vector<bool> garble;  // per piece
  };

  // The sector pieces of an operation that changed [offset, offset + length).
  static void add_pieces(FileModel& f, uint64_t offset, uint64_t length);
  static void sync(FileModel& f);
  static FileImage materialize(const FileModel& f, const Choice& choice, std::mt19937_64* junk);
  CrashState build(const std::array<Choice, kTracedFiles>& choices, std::mt19937_64* junk,
                   std::string how) const;

  std::array<FileModel, kTracedFiles> files_;
};

}  // namespace clonefs::crash
