// The in-flight table: which regions are being copied or made valid right now. I/O that needs a
// region in flight waits for that region alone (not a global lock).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace clonefs {

class RegionLocks {
 public:
  RegionLocks() = default;
  RegionLocks(const RegionLocks&) = delete;
  RegionLocks& operator=(const RegionLocks&) = delete;

  // Blocks until `region` is not in flight, then puts it in flight.
  void lock(uint64_t region);
  // Puts `region` in flight if it is not already; never blocks.
  bool try_lock(uint64_t region);
  void unlock(uint64_t region);
  // Blocks until `region` is not in flight (without taking it).
  void wait_idle(uint64_t region);
  size_t in_flight() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable released_;
  std::unordered_set<uint64_t> in_flight_;  // guarded by mu_
};

// Holds one region in flight for a scope.
class RegionLock {
 public:
  RegionLock(RegionLocks& locks, uint64_t region) : locks_(locks), region_(region) { locks_.lock(region_); }
  ~RegionLock() { locks_.unlock(region_); }
  RegionLock(const RegionLock&) = delete;
  RegionLock& operator=(const RegionLock&) = delete;

 private:
  RegionLocks& locks_;
  uint64_t region_;
};

}  // namespace clonefs
