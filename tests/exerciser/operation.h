// The exerciser's operations (in the manner of xfstests' fsx) on a file of fixed size, drawn from
// one seed: the same seed, options and operation count give the same sequence, so a failure is
// replayed by its command line alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

namespace clonefs::exerciser {

enum class OpKind {
  kRead,
  kWrite,
  kMapRead,
  kMapWrite,
  kPunchHole,
  kZeroRange,
  kCopyRange,
  kFsync,
  kFdatasync,
  kReopen,
  kInvalidate,  // drops the file's clean pages from the page cache: later reads ask the mount
};

constexpr size_t kOpKinds = 11;

struct Operation {
  uint64_t number = 0;  // 1-based, as the log and the replay's --ops count them
  OpKind kind = OpKind::kRead;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t from = 0;    // kCopyRange: where the bytes are copied from
  bool direct = false;  // kRead/kWrite through the O_DIRECT descriptor

  bool touches_data() const {
    return kind != OpKind::kFsync && kind != OpKind::kFdatasync && kind != OpKind::kReopen &&
           kind != OpKind::kInvalidate;
  }
  // Whether the operation changes the bytes of [offset, offset + length).
  bool changes_data() const {
    return kind == OpKind::kWrite || kind == OpKind::kMapWrite || kind == OpKind::kPunchHole ||
           kind == OpKind::kZeroRange || kind == OpKind::kCopyRange;
  }
};

struct GeneratorOptions {
  uint64_t file_size = 0;
  uint64_t max_length = 64 * 1024;
  bool mmap = true;
  bool direct = false;  // reads and writes through O_DIRECT, aligned to kDirectAlignment
};

constexpr uint64_t kDirectAlignment = 4096;

// Draws operation `number` from `rng` (which advances the same way for the same options).
Operation next_operation(std::mt19937_64& rng, uint64_t number, const GeneratorOptions& options);

// "read", "write", "mapread", ...: as the log and the summary name them.
const char* kind_name(OpKind kind);

// One line of the op log: "#12 write 0x1000 +0x800 direct", "#13 copy 0x0 -> 0x4000 +0x10".
std::string format_operation(const Operation& op);
// The inverse of format_operation (nullopt for a line that is not an operation).
std::optional<Operation> parse_operation(const std::string& line);

// The byte operation `number` writes at file offset `position`: different for every (operation,
// position), so bytes found in the wrong place tell which write put them there.
uint8_t pattern_byte(uint64_t number, uint64_t position);

}  // namespace clonefs::exerciser
