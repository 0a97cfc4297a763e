// The hydration controls, and the narrow part of the metadata that keeps them between mounts,
// so that a clone steered to be polite to its source stays so after a remount.
#pragma once

#include <cstdint>
#include <optional>

#include "util/status.h"

namespace clonefs {

struct HydrationSettings {
  bool paused = false;
  uint64_t threshold = 64;  // regions in flight at most (dm-clone's hydration_threshold)
  uint64_t batch = 16;      // contiguous regions per copy (dm-clone's hydration_batch_size)
  uint64_t rate = 0;        // bytes per second copied at most; 0: no limit
  bool operator==(const HydrationSettings&) const = default;
};

// The largest batch: its regions are held in flight at once (user I/O to them waits) and copied
// in one step. 1024 regions is 16 MiB at the default region size; at 1 GiB regions 1 TiB, still
// copied in bounded pieces (engine/clone_engine.h), so memory does not grow with it.
inline constexpr uint64_t kMaxHydrationBatch = 1024;
// The largest threshold: past the hydrator's 8 workers x kMaxHydrationBatch regions in flight more
// changes nothing, so 65536 leaves room to spare while catching a typo's extra digits.
inline constexpr uint64_t kMaxHydrationThreshold = 65536;

class HydrationSettingsStore {
 public:
  virtual ~HydrationSettingsStore() = default;
  // The controls saved by the last mount or `clonefs hydrate`; nullopt if none ever were (a
  // clone made by an older clonefs, or never steered): the defaults apply.
  virtual Result<std::optional<HydrationSettings>> load_hydration_settings() = 0;
  // Replaces the saved controls, durably when it returns OK.
  virtual Status save_hydration_settings(const HydrationSettings& settings) = 0;
};

}  // namespace clonefs
