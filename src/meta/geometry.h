// How the image is cut into regions: a power-of-two region size, the last region may be short.
#pragma once

#include <cstdint>

#include "io/devices.h"
#include "util/status.h"

namespace clonefs {

inline constexpr unsigned kMinRegionShift = 12;  // 4 KiB
inline constexpr unsigned kMaxRegionShift = 30;  // 1 GiB
// 16 KiB, chosen by bench/region_sizes.py: against 64 KiB it copies 3.3x less per first 4 KiB
// write into a region (1.4-2.2x the IOPS) and hydrates as fast, for 8 MiB of bitmap per TiB
// instead of 2. 4 KiB copies nothing for 4 KiB writes, but costs 32 MiB per TiB (512 MiB at
// 16 TiB), for a saving that lasts only until hydration reaches the region.
inline constexpr uint64_t kDefaultRegionSize = 16 * 1024;
// The most regions a clone may have: 2^32 is a 512 MiB bitmap in memory (16 TiB at 4 KiB
// regions, 64 TiB at the default, 4 EiB at 1 GiB). A larger image needs larger regions; a record
// claiming more is refused rather than allocated.
inline constexpr uint64_t kMaxRegionCount = uint64_t{1} << 32;

class Geometry {
 public:
  // Refuses a region size that is not a power of two in [4 KiB, 1 GiB], an empty image, and one
  // of more than kMaxRegionCount regions.
  static Result<Geometry> make(uint64_t image_size, uint64_t region_size);

  uint64_t image_size() const { return image_size_; }
  uint64_t region_size() const { return uint64_t{1} << shift_; }
  unsigned region_shift() const { return shift_; }
  uint64_t region_count() const { return regions_of(image_size_, shift_); }
  static uint64_t regions_of(uint64_t image_size, unsigned shift) {
    // Without image_size + region_size - 1, which wraps for a size near 2^64.
    return (image_size >> shift) + ((image_size & ((uint64_t{1} << shift) - 1)) != 0 ? 1 : 0);
  }
  uint64_t region_of(uint64_t offset) const { return offset >> shift_; }
  Extent region_extent(uint64_t region) const {
    uint64_t begin = region << shift_;
    uint64_t end = begin + region_size();
    return {begin, end < image_size_ ? end : image_size_};
  }
  bool operator==(const Geometry&) const = default;

 private:
  Geometry(uint64_t image_size, unsigned shift) : image_size_(image_size), shift_(shift) {}
  uint64_t image_size_;
  unsigned shift_;
};

}  // namespace clonefs
