// What the engine tells about user I/O as it happens, for whoever steers hydration by it: the
// hydrator (priority for regions read from the source) and the profile recorder (the order in
// which regions were first used). The engine knows only this interface, never who implements it.
#pragma once

#include <cstdint>

#include "meta/region_run.h"

namespace clonefs {

class AccessObserver {
 public:
  virtual ~AccessObserver() = default;
  // Any user read, write, discard or flush, as it starts: user I/O goes before hydration.
  virtual void user_io() noexcept = 0;
  // A user read, write or discard touching regions [first, first + count), before it is served.
  virtual void regions_accessed(uint64_t first, uint64_t count) noexcept = 0;
  // A user read of regions [first, first + count), all invalid when tested, is about to be
  // served from the source; of those, it will write `through` (the regions it holds whole,
  // when write-through is on) into the destination itself.
  virtual void read_fell_through(uint64_t first, uint64_t count, RegionRun through) noexcept = 0;
};

}  // namespace clonefs
