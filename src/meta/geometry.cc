#include "meta/geometry.h"

#include <bit>
#include <string>

namespace clonefs {

Result<Geometry> Geometry::make(uint64_t image_size, uint64_t region_size) {
  if (image_size == 0) return Status::error(EINVAL, "image size is 0");
  if (!std::has_single_bit(region_size)) {
    return Status::error(EINVAL,
                         "region size " + std::to_string(region_size) + " is not a power of two");
  }
  unsigned shift = static_cast<unsigned>(std::countr_zero(region_size));
  if (shift < kMinRegionShift || shift > kMaxRegionShift) {
    return Status::error(
        EINVAL, "region size " + std::to_string(region_size) + " is out of range (4 KiB to 1 GiB)");
  }
  if (regions_of(image_size, shift) > kMaxRegionCount) {
    return Status::error(EINVAL, "image size " + std::to_string(image_size) + " at region size " +
                                     std::to_string(region_size) + " is more than " +
                                     std::to_string(kMaxRegionCount) +
                                     " regions (pass a larger --region-size)");
  }
  return Geometry(image_size, shift);
}

}  // namespace clonefs
