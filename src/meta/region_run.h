// A run of regions, the unit in which hydration orders are given (on-demand requests, profiles,
// file hints).
#pragma once

#include <cstdint>

namespace clonefs {

// Regions [first, first + count).
struct RegionRun {
  uint64_t first = 0;
  uint64_t count = 0;
  bool operator==(const RegionRun&) const = default;
};

}  // namespace clonefs
