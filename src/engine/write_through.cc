// Write-through of fall-through reads: the source bytes a user read fetched for whole invalid
// regions are written into the destination and the regions made valid, so hydration need not
// read them from the source a second time (with a remote source, a second round trip and a
// second share of the rate limit for bytes already in memory). The commit rule is the one every
// copy follows: data written here, the region marked in the open transaction, and the commit
// syncs the destination before it records the region.
#include "engine/clone_engine.h"

namespace clonefs {

void CloneEngine::set_write_through(bool on) {
  write_through_.store(on, std::memory_order_relaxed);
}

bool CloneEngine::write_through_on() const {
  // Sharing extents costs no space and no read; writing the bytes would cost both.
  return write_through_.load(std::memory_order_relaxed) && copy_method() != CopyMethod::kReflink;
}

RegionRun CloneEngine::whole_regions(uint64_t offset, uint64_t length) const {
  if (length == 0) return {};
  const uint64_t end = offset + length;
  uint64_t first = geometry_.region_of(offset);
  if (geometry_.region_extent(first).begin < offset) ++first;
  uint64_t stop = geometry_.region_of(end - 1) + 1;         // one past the last region touched...
  if (geometry_.region_extent(stop - 1).end > end) --stop;  // ...and held whole
  return first < stop ? RegionRun{first, stop - first} : RegionRun{};
}

void CloneEngine::write_through(uint64_t offset, std::span<const std::byte> data) {
  const RegionRun whole = whole_regions(offset, data.size());
  const uint64_t first = whole.first, stop = whole.first + whole.count;
  // Read-only or fail mode: nothing may become valid, so nothing is written either.
  if (whole.count == 0 || !writable().is_ok()) return;
  for (uint64_t r = first; r < stop;) {
    // A region someone holds (a copy, a write) or that became valid is theirs: skipped.
    if (bitmap_.test(r) || !locks_.try_lock(r)) {
      ++r;
      continue;
    }
    uint64_t n = 1;
    while (r + n < stop && !bitmap_.test(r + n) && locks_.try_lock(r + n)) ++n;
    // Held now, so nothing makes them valid under us; one may have before its lock was taken.
    for (uint64_t i = r; i < r + n;) {
      if (bitmap_.test(i)) {
        ++i;
        continue;
      }
      uint64_t j = i + 1;
      while (j < r + n && !bitmap_.test(j)) ++j;
      const Extent run{geometry_.region_extent(i).begin, geometry_.region_extent(j - 1).end};
      // Best effort: the read is served whatever happens here, and a region whose write failed
      // stays invalid (its destination bytes are never read until a copy makes it valid).
      if (destination_.write_at(run.begin, data.subspan(run.begin - offset, run.length()))
              .is_ok()) {
        counters_.bytes_written_through.fetch_add(run.length(), std::memory_order_relaxed);
        (void)mark_valid(i, j - i);  // fails only outside read-write mode: stays invalid
      }
      i = j;
    }
    for (uint64_t i = r; i < r + n; ++i) locks_.unlock(i);
    r += n;
  }
}

}  // namespace clonefs
