// One hydration step: copy a batch of contiguous invalid regions from the source, leaving holes
// and all-zero regions sparse in the destination.
#include <cstring>

#include "engine/clone_engine.h"
#include "util/page_buffer.h"

namespace clonefs {
namespace {

bool all_zero(std::span<const std::byte> bytes) {
  if (bytes.size() < 8) {
    for (std::byte b : bytes)
      if (b != std::byte{0}) return false;
    return true;
  }
  // Zero in the first 8 bytes, and every byte equal to the one 8 further on.
  static const std::byte zeros[8] = {};
  return std::memcmp(bytes.data(), zeros, 8) == 0 &&
         std::memcmp(bytes.data(), bytes.data() + 8, bytes.size() - 8) == 0;
}

// Releases the regions a step put in flight, whatever way it ends.
class HeldRegions {
 public:
  explicit HeldRegions(RegionLocks& locks) : locks_(locks) {}
  ~HeldRegions() {
    for (uint64_t r = first_; r < first_ + count_; ++r) locks_.unlock(r);
  }
  HeldRegions(const HeldRegions&) = delete;
  HeldRegions& operator=(const HeldRegions&) = delete;
  void add(uint64_t region) {
    if (count_ == 0) first_ = region;
    ++count_;
  }
  uint64_t first() const { return first_; }
  uint64_t count() const { return count_; }

 private:
  RegionLocks& locks_;
  uint64_t first_ = 0;
  uint64_t count_ = 0;
};

}  // namespace

Result<HydrateStep> CloneEngine::hydrate(uint64_t first, uint64_t max_regions) {
  CLONEFS_RETURN_IF_ERROR(writable());
  HydrateStep step{first, 0, 0};
  HeldRegions held(locks_);
  for (uint64_t r = first; r < geometry_.region_count() && held.count() < max_regions; ++r) {
    if (bitmap_.test(r) || !locks_.try_lock(r)) break;
    if (bitmap_.test(r)) {  // made valid between the test and the lock
      locks_.unlock(r);
      break;
    }
    held.add(r);
  }
  if (held.count() == 0) return step;

  const Extent span{geometry_.region_extent(held.first()).begin,
                    geometry_.region_extent(held.first() + held.count() - 1).end};
  auto data = source_.next_data(span.begin);
  if (!data) return data.status();
  if (!data->has_value() || (*data)->begin >= span.end) {
    // Only holes: punch in case an uncommitted write left something there before a crash.
    CLONEFS_RETURN_IF_ERROR(destination_.punch(span.begin, span.length()));
    // Counters before the bits: whoever sees the regions valid sees them counted.
    counters_.regions_skipped.fetch_add(held.count(), std::memory_order_relaxed);
    CLONEFS_RETURN_IF_ERROR(mark_valid(held.first(), held.count()));
    step.hydrated = held.count();
    return step;
  }

  thread_local KeptBuffer batch_buffer;  // see util/page_buffer.h for why
  KeptBuffer::Lease lease = batch_buffer.lease(span.length());
  std::span<std::byte> buf = lease.span();
  CLONEFS_RETURN_IF_ERROR(source_.read_at(span.begin, buf));
  // Contiguous runs of data regions are one write; runs of zero regions one punch.
  uint64_t run_begin = span.begin;
  bool run_zero = false;
  uint64_t skipped = 0;
  auto flush_run = [&](uint64_t run_end) -> Status {
    if (run_end == run_begin) return Status::ok();
    if (run_zero) return destination_.punch(run_begin, run_end - run_begin);
    auto bytes = std::span<const std::byte>(buf).subspan(run_begin - span.begin, run_end - run_begin);
    step.copied_bytes += bytes.size();
    return destination_.write_at(run_begin, bytes);
  };
  for (uint64_t r = held.first(); r < held.first() + held.count(); ++r) {
    Extent extent = geometry_.region_extent(r);
    bool zero = all_zero(std::span<const std::byte>(buf).subspan(extent.begin - span.begin, extent.length()));
    skipped += zero ? 1 : 0;
    if (zero != run_zero) {
      CLONEFS_RETURN_IF_ERROR(flush_run(extent.begin));
      run_begin = extent.begin;
      run_zero = zero;
    }
  }
  CLONEFS_RETURN_IF_ERROR(flush_run(span.end));
  counters_.regions_skipped.fetch_add(skipped, std::memory_order_relaxed);
  counters_.regions_copied.fetch_add(held.count() - skipped, std::memory_order_relaxed);
  counters_.bytes_copied.fetch_add(step.copied_bytes, std::memory_order_relaxed);
  CLONEFS_RETURN_IF_ERROR(mark_valid(held.first(), held.count()));
  step.hydrated = held.count();
  return step;
}

}  // namespace clonefs
