#include "operation.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <tuple>
#include <utility>

namespace clonefs::exerciser {
namespace {

struct KindInfo {
  OpKind kind;
  const char* name;
  unsigned weight;  // how often it is drawn, against the others (fsx's default mix, roughly)
};

constexpr std::array<KindInfo, kOpKinds> kKinds{{
    {OpKind::kRead, "read", 18},
    {OpKind::kWrite, "write", 18},
    {OpKind::kMapRead, "mapread", 8},
    {OpKind::kMapWrite, "mapwrite", 8},
    {OpKind::kPunchHole, "punch", 6},
    {OpKind::kZeroRange, "zero", 6},
    {OpKind::kCopyRange, "copy", 8},
    {OpKind::kFsync, "fsync", 3},
    {OpKind::kFdatasync, "fdatasync", 3},
    {OpKind::kReopen, "reopen", 1},
    {OpKind::kInvalidate, "invalidate", 3},
}};

OpKind draw_kind(std::mt19937_64& rng) {
  unsigned total = 0;
  for (const KindInfo& k : kKinds) total += k.weight;
  unsigned pick = static_cast<unsigned>(rng() % total);
  for (const KindInfo& k : kKinds) {
    if (pick < k.weight) return k.kind;
    pick -= k.weight;
  }
  return OpKind::kRead;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A range anywhere in the file, of 1 to max_length bytes (aligned for O_DIRECT when asked).
std::pair<uint64_t, uint64_t> draw_range(std::mt19937_64& rng, const GeneratorOptions& options,
                                         bool aligned) {
  uint64_t offset = rng() % options.file_size;
  uint64_t length = 1 + rng() % options.max_length;
  if (aligned) {
    offset -= offset % kDirectAlignment;
    length = (length + kDirectAlignment - 1) / kDirectAlignment * kDirectAlignment;
  }
  if (length > options.file_size - offset) length = options.file_size - offset;
  return {offset, length};
}

// copy_file_range refuses overlapping ranges of one file: `to` is drawn from the places that do
// not overlap [from, from + length).
void draw_copy(std::mt19937_64& rng, const GeneratorOptions& options, Operation& op) {
  uint64_t size = options.file_size;
  uint64_t length = 1 + rng() % std::min(options.max_length, size / 2);
  uint64_t from = rng() % (size - length + 1);
  uint64_t below = from >= length ? from - length + 1 : 0;  // targets [0, from - length]
  uint64_t above = size - length >= from + length ? size - length - (from + length) + 1 : 0;
  uint64_t pick = rng() % (below + above);
  op.from = from;
  op.length = length;
  op.offset = pick < below ? pick : from + length + (pick - below);
}

}  // namespace

Operation next_operation(std::mt19937_64& rng, uint64_t number, const GeneratorOptions& options) {
  Operation op;
  op.number = number;
  op.kind = draw_kind(rng);
  if (!options.mmap && op.kind == OpKind::kMapRead) op.kind = OpKind::kRead;
  if (!options.mmap && op.kind == OpKind::kMapWrite) op.kind = OpKind::kWrite;
  if (op.kind == OpKind::kCopyRange) {
    draw_copy(rng, options, op);
  } else if (op.touches_data()) {
    op.direct = options.direct && (op.kind == OpKind::kRead || op.kind == OpKind::kWrite);
    std::tie(op.offset, op.length) = draw_range(rng, options, op.direct);
  }
  return op;
}

const char* kind_name(OpKind kind) {
  for (const KindInfo& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "?";
}

std::string format_operation(const Operation& op) {
  const char* name = kind_name(op.kind);
  char line[160];
  if (op.kind == OpKind::kCopyRange) {
    std::snprintf(line, sizeof line, "#%" PRIu64 " %s 0x%" PRIx64 " -> 0x%" PRIx64 " +0x%" PRIx64,
                  op.number, name, op.from, op.offset, op.length);
  } else if (op.touches_data()) {
    std::snprintf(line, sizeof line, "#%" PRIu64 " %s 0x%" PRIx64 " +0x%" PRIx64 "%s", op.number,
                  name, op.offset, op.length, op.direct ? " direct" : "");
  } else {
    std::snprintf(line, sizeof line, "#%" PRIu64 " %s", op.number, name);
  }
  return line;
}

std::optional<Operation> parse_operation(const std::string& line) {
  Operation op;
  char name[32] = {};
  int used = 0;
  if (std::sscanf(line.c_str(), "#%" SCNu64 " %31s %n", &op.number, name, &used) < 2) {
    return std::nullopt;
  }
  bool found = false;
  for (const KindInfo& k : kKinds) {
    if (std::string(name) == k.name) op.kind = k.kind, found = true;
  }
  if (!found) return std::nullopt;
  const char* rest = line.c_str() + used;
  if (op.kind == OpKind::kCopyRange) {
    if (std::sscanf(rest, "0x%" SCNx64 " -> 0x%" SCNx64 " +0x%" SCNx64, &op.from, &op.offset,
                    &op.length) != 3) {
      return std::nullopt;
    }
  } else if (op.touches_data()) {
    if (std::sscanf(rest, "0x%" SCNx64 " +0x%" SCNx64, &op.offset, &op.length) != 2) {
      return std::nullopt;
    }
    op.direct = line.find(" direct") != std::string::npos;
  }
  return op;
}

uint8_t pattern_byte(uint64_t number, uint64_t position) {
  uint64_t word = splitmix64((number << 40) ^ (position >> 3));
  return static_cast<uint8_t>(word >> (8 * (position & 7)));
}

}  // namespace clonefs::exerciser
