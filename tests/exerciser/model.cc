#include "model.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace clonefs::exerciser {
namespace {

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, v);
  return text;
}

std::string hex_bytes(const uint8_t* bytes, uint64_t length) {
  std::string text;
  char two[4];
  for (uint64_t i = 0; i < std::min<uint64_t>(length, 16); ++i) {
    std::snprintf(two, sizeof two, "%02x", bytes[i]);
    text += two;
  }
  return length > 16 ? text + "..." : text;
}

}  // namespace

Model::Model(std::vector<uint8_t> source) : source_(std::move(source)), bytes_(source_) {}

Model::Model(std::vector<uint8_t> source, std::vector<uint8_t> expected,
             std::vector<Operation> history)
    : source_(std::move(source)), bytes_(std::move(expected)), history_(std::move(history)) {}

void Model::fill_pattern(const Operation& op, uint8_t* out) {
  for (uint64_t i = 0; i < op.length; ++i) out[i] = pattern_byte(op.number, op.offset + i);
}

void Model::apply(const Operation& op, uint64_t length) {
  uint8_t* at = bytes_.data() + op.offset;
  switch (op.kind) {
    case OpKind::kWrite:
    case OpKind::kMapWrite:
      fill_pattern(op, at);
      break;
    case OpKind::kPunchHole:
    case OpKind::kZeroRange:
      std::memset(at, 0, length);
      break;
    case OpKind::kCopyRange:
      std::memcpy(at, bytes_.data() + op.from, length);  // the ranges never overlap
      break;
    default:
      break;
  }
  Operation done = op;
  done.length = length;
  history_.push_back(done);
}

void Model::record(const Operation& op) { history_.push_back(op); }

std::string Model::log_tail(size_t count) const {
  std::string text;
  size_t first = history_.size() > count ? history_.size() - count : 0;
  for (size_t i = first; i < history_.size(); ++i)
    text += "  " + format_operation(history_[i]) + "\n";
  return text;
}

std::string Model::what_was_found(uint64_t begin, uint64_t end, const uint8_t* found) const {
  uint64_t length = end - begin;
  if (std::memcmp(found, source_.data() + begin, length) == 0) return "the source's bytes";
  if (std::all_of(found, found + length, [](uint8_t b) { return b == 0; })) return "zeros";
  for (auto op = history_.rbegin(); op != history_.rend(); ++op) {
    if (op->kind != OpKind::kWrite && op->kind != OpKind::kMapWrite) continue;
    if (op->offset > begin || op->offset + op->length < end) continue;
    bool match = true;
    for (uint64_t p = begin; p < end && match; ++p)
      match = found[p - begin] == pattern_byte(op->number, p);
    if (match) return "the bytes of " + format_operation(*op);
  }
  return "bytes of no write (" + hex_bytes(found, length) + ")";
}

std::string Model::explain_range(uint64_t begin, uint64_t end, const uint8_t* found) const {
  std::string text = "  [" + hex(begin) + ", " + hex(end) + ") " + std::to_string(end - begin) +
                     " bytes: expected " + hex_bytes(bytes_.data() + begin, end - begin) +
                     ", found " + what_was_found(begin, end, found) + "\n";
  int shown = 0;
  for (auto op = history_.rbegin(); op != history_.rend() && shown < 4; ++op) {
    if (!op->changes_data() || op->offset >= end || op->offset + op->length <= begin) continue;
    text += "    last changed by " + format_operation(*op) + "\n";
    ++shown;
  }
  if (shown == 0) text += "    never changed: the source's bytes were expected\n";
  return text;
}

std::string Model::describe_difference(uint64_t offset, const uint8_t* found, uint64_t length,
                                       int max_ranges) const {
  std::string text;
  int ranges = 0;
  uint64_t differing = 0;
  for (uint64_t i = 0; i < length;) {
    if (found[i] == bytes_[offset + i]) {
      ++i;
      continue;
    }
    // Bytes that equal the expected ones by chance (1 in 256) do not split a range.
    uint64_t j = i + 1;
    for (uint64_t k = j; k < length && k - j < 16; ++k) {
      if (found[k] != bytes_[offset + k]) j = k + 1;
    }
    differing += j - i;
    if (ranges++ < max_ranges) text += explain_range(offset + i, offset + j, found + i);
    i = j;
  }
  if (ranges > max_ranges)
    text += "  ... " + std::to_string(ranges - max_ranges) + " more ranges\n";
  return std::to_string(differing) + " bytes differ in " + std::to_string(ranges) + " ranges\n" +
         text;
}

}  // namespace clonefs::exerciser
