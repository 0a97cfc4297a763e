// The in-flight table: which regions are being copied or made valid right now. I/O that needs a
// region in flight waits for that region alone (not a global lock).
//
// An entry is a run of regions [first, first + count), so a discard of a whole 16 TiB image holds
// its 4 Gi regions as one entry instead of one each. Entries never overlap; an ordered map keyed
// by the first region finds an overlap in O(log n) (n: entries in flight, a few dozen).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace clonefs {

class RegionLocks {
 public:
  RegionLocks() = default;
  RegionLocks(const RegionLocks&) = delete;
  RegionLocks& operator=(const RegionLocks&) = delete;

  // Blocks until no region of [first, first + count) is in flight, then puts them all in flight.
  void lock(uint64_t first, uint64_t count = 1);
  // Puts [first, first + count) in flight if none of it is, and no lock() is waiting for any of
  // it (so a stream of try_locks, the hydrator's, cannot starve a waiting range); never blocks.
  bool try_lock(uint64_t first, uint64_t count = 1);
  // Ends the entry that lock()/try_lock() started at `first`.
  void unlock(uint64_t first);
  // Blocks until `region` is not in flight (without taking it).
  void wait_idle(uint64_t region);
  // Regions in flight (not entries).
  uint64_t in_flight() const;

 private:
  bool overlaps_held_locked(uint64_t first, uint64_t end) const;
  bool overlaps_waiting_locked(uint64_t first, uint64_t end) const;

  mutable std::mutex mu_;
  std::condition_variable released_;
  std::map<uint64_t, uint64_t> held_;  // guarded by mu_: first -> end, disjoint
  std::vector<std::pair<uint64_t, uint64_t>>
      waiting_;                // guarded by mu_: [first, end) of blocked lock()s
  uint64_t held_regions_ = 0;  // guarded by mu_
};

// Holds a run of regions (one by default) in flight for a scope.
class RegionLock {
 public:
  RegionLock(RegionLocks& locks, uint64_t first, uint64_t count = 1)
      : locks_(locks), first_(first) {
    locks_.lock(first, count);
  }
  ~RegionLock() { locks_.unlock(first_); }
  RegionLock(const RegionLock&) = delete;
  RegionLock& operator=(const RegionLock&) = delete;

 private:
  RegionLocks& locks_;
  uint64_t first_;
};

}  // namespace clonefs
