// One bit per region: set = valid (the destination holds the region's current data).
// Bits are atomic words so the I/O path tests validity without a lock; bits are only set
// (never cleared) while the engine runs, except by load() after a failed commit.
//
// The bitmap is persisted in chunks of kChunkBytes: a commit rewrites only the chunks holding
// regions that changed in its transaction, so commit cost grows with the regions changed, not
// with the image size. 512-byte chunks (4096 regions each) keep the per-region rewrite cost at
// most 512 bytes while a 1 TiB image at 64 KiB regions still needs only 4096 rows.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "util/status.h"

namespace clonefs {

inline constexpr uint64_t kChunkBytes = 512;
inline constexpr uint64_t kRegionsPerChunk = kChunkBytes * 8;

class RegionBitmap {
 public:
  explicit RegionBitmap(uint64_t region_count);
  RegionBitmap(const RegionBitmap&) = delete;
  RegionBitmap& operator=(const RegionBitmap&) = delete;

  uint64_t region_count() const { return region_count_; }
  uint64_t chunk_count() const { return (region_count_ + kRegionsPerChunk - 1) / kRegionsPerChunk; }
  static uint64_t chunk_of(uint64_t region) { return region / kRegionsPerChunk; }

  bool test(uint64_t region) const {
    return (words_[region / 64].load(std::memory_order_acquire) >> (region % 64)) & 1;
  }
  // Returns true if the bit was clear before.
  bool set(uint64_t region);
  // Sets [first, first + count) a word at a time; returns how many bits were clear before.
  // Marking a 1 TiB discard valid at 4 KiB regions is 4 Mi word operations, not 268 Mi.
  uint64_t set_range(uint64_t first, uint64_t count);
  // How many regions of [first, first + count) are valid, a word at a time.
  uint64_t count_valid(uint64_t first, uint64_t count) const;
  // Acquire: whoever sees a region counted valid also sees what was done before it was set
  // (its copy, its counters).
  uint64_t valid_count() const { return valid_.load(std::memory_order_acquire); }
  bool all_valid() const { return valid_count() == region_count_; }
  // First invalid region at or after `from`, if any.
  std::optional<uint64_t> next_invalid(uint64_t from) const;

  // The chunk's bytes as stored: bit r of the chunk is byte r/8, bit r%8 (little-endian).
  std::vector<std::byte> chunk_image(uint64_t chunk) const;
  // Replaces all bits; chunks absent from the store are all-invalid.
  void clear();
  // Refuses a chunk of the wrong size or with bits set past the last region.
  Status load_chunk(uint64_t chunk, std::span<const std::byte> bytes);
  // Makes this bitmap equal to `other` (same region count) word by word, so bits set in both stay
  // set throughout: lock-free readers never see a committed region flicker invalid.
  void assign_from(const RegionBitmap& other);
  // Makes one chunk equal to `bytes` as stored (empty: all invalid), word by word as
  // assign_from does. Checks `bytes` as load_chunk does, changing nothing if they are wrong.
  Status assign_chunk(uint64_t chunk, std::span<const std::byte> bytes);
  size_t memory_bytes() const { return word_count() * sizeof(uint64_t); }

 private:
  size_t word_count() const { return static_cast<size_t>((region_count_ + 63) / 64); }
  uint64_t chunk_bytes(uint64_t chunk) const;

  uint64_t region_count_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
  std::atomic<uint64_t> valid_{0};
};

}  // namespace clonefs
