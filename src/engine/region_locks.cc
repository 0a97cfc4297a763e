#include "engine/region_locks.h"

namespace clonefs {

void RegionLocks::lock(uint64_t region) {
  std::unique_lock lock(mu_);
  released_.wait(lock, [&] { return !in_flight_.contains(region); });
  in_flight_.insert(region);
}

bool RegionLocks::try_lock(uint64_t region) {
  std::lock_guard lock(mu_);
  return in_flight_.insert(region).second;
}

void RegionLocks::unlock(uint64_t region) {
  {
    std::lock_guard lock(mu_);
    in_flight_.erase(region);
  }
  released_.notify_all();
}

void RegionLocks::wait_idle(uint64_t region) {
  std::unique_lock lock(mu_);
  released_.wait(lock, [&] { return !in_flight_.contains(region); });
}

size_t RegionLocks::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_.size();
}

}  // namespace clonefs
