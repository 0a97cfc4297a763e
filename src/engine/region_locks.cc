#include "engine/region_locks.h"

#include <algorithm>
#include <cassert>
#include <iterator>

namespace clonefs {

bool RegionLocks::overlaps_held_locked(uint64_t first, uint64_t end) const {
  auto next = held_.lower_bound(first);  // the first entry starting at or after `first`
  if (next != held_.end() && next->first < end) return true;
  return next != held_.begin() && std::prev(next)->second > first;
}

bool RegionLocks::overlaps_waiting_locked(uint64_t first, uint64_t end) const {
  return std::any_of(waiting_.begin(), waiting_.end(),
                     [&](const auto& w) { return w.first < end && first < w.second; });
}

void RegionLocks::lock(uint64_t first, uint64_t count) {
  const uint64_t end = first + count;
  std::unique_lock lock(mu_);
  if (overlaps_held_locked(first, end)) {
    waiting_.emplace_back(first, end);
    released_.wait(lock, [&] { return !overlaps_held_locked(first, end); });
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), std::make_pair(first, end)));
  }
  held_.emplace(first, end);
  held_regions_ += count;
}

bool RegionLocks::try_lock(uint64_t first, uint64_t count) {
  const uint64_t end = first + count;
  std::lock_guard lock(mu_);
  if (overlaps_held_locked(first, end) || overlaps_waiting_locked(first, end)) return false;
  held_.emplace(first, end);
  held_regions_ += count;
  return true;
}

void RegionLocks::unlock(uint64_t first) {
  {
    std::lock_guard lock(mu_);
    auto entry = held_.find(first);
    assert(entry != held_.end() && "unlock of a region run that is not in flight");
    if (entry == held_.end()) return;
    held_regions_ -= entry->second - entry->first;
    held_.erase(entry);
  }
  released_.notify_all();
}

void RegionLocks::wait_idle(uint64_t region) {
  std::unique_lock lock(mu_);
  released_.wait(lock, [&] { return !overlaps_held_locked(region, region + 1); });
}

uint64_t RegionLocks::in_flight() const {
  std::lock_guard lock(mu_);
  return held_regions_;
}

}  // namespace clonefs
