// What the file must hold: the source's bytes with every operation that changed data applied,
// and the history of those operations, to say where unexpected bytes came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "operation.h"

namespace clonefs::exerciser {

class Model {
 public:
  explicit Model(std::vector<uint8_t> source);
  // The model a finished run left (`expected`, and the operations of its log), to explain how a
  // file differs from it.
  Model(std::vector<uint8_t> source, std::vector<uint8_t> expected, std::vector<Operation> history);

  uint64_t size() const { return bytes_.size(); }
  const uint8_t* data(uint64_t offset = 0) const { return bytes_.data() + offset; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

  // The bytes operation `op` (a write or mapwrite) writes.
  static void fill_pattern(const Operation& op, uint8_t* out);
  // Applies an operation that changed `length` bytes at op.offset (a copy may be short).
  void apply(const Operation& op, uint64_t length);
  // Keeps the operation in the history without changing bytes (reads, syncs): for the log tail.
  void record(const Operation& op);

  // A description of how `found` (the file's bytes at `offset`) differs from the model: each
  // differing range (up to `max_ranges`), what it holds instead (the source's bytes, zeros, the
  // bytes of write #n, or unknown bytes) and the last operations that changed it.
  std::string describe_difference(uint64_t offset, const uint8_t* found, uint64_t length,
                                  int max_ranges = 4) const;
  // The last `count` operations, oldest first, one a line.
  std::string log_tail(size_t count) const;

 private:
  std::string explain_range(uint64_t begin, uint64_t end, const uint8_t* found) const;
  std::string what_was_found(uint64_t begin, uint64_t end, const uint8_t* found) const;

  std::vector<uint8_t> source_;
  std::vector<uint8_t> bytes_;
  std::vector<Operation> history_;
};

}  // namespace clonefs::exerciser
