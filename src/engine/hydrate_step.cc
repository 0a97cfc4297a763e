// One hydration step: copy a batch of contiguous invalid regions from the source, leaving holes
// sparse in the destination. Read and written, all-zero regions are left sparse too; shared
// (reflink) or copied inside the kernel, they are not looked at: finding them would mean reading
// every byte, which costs far more than sharing them (no space) and as much as copying them.
#include <atomic>
#include <cstring>

#include "engine/clone_engine.h"
#include "io/kernel_copy.h"
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

// A piece is kept in the thread's buffer between steps, never allocated (see kMaxCopyBytes).
static_assert(kMaxCopyBytes <= KeptBuffer::kKeptBytes);

Result<HydrateStep> CloneEngine::hydrate(uint64_t first, uint64_t max_regions,
                                         const std::atomic<bool>* cancel) {
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

  if (copy_method() != CopyMethod::kReadWrite) {
    auto done = hydrate_in_kernel(span, cancel, step);
    if (!done) return done.status();
    if (*done) {
      CLONEFS_RETURN_IF_ERROR(mark_valid(held.first(), held.count()));
      step.hydrated = held.count();
      return step;
    }
    step.copied_bytes = step.shared_bytes = 0;  // all of it is read and written below
  }

  // The span is read in pieces of at most kMaxCopyBytes. Zeros are found per unit: a region, or
  // a kMaxCopyBytes part of a region larger than that. Contiguous data units of a piece are one
  // write; contiguous zero units, across pieces, one punch. Units and pieces both start at
  // multiples of `unit` from the region-aligned span start (powers of two), so none straddles.
  const uint64_t unit = std::min<uint64_t>(geometry_.region_size(), kMaxCopyBytes);
  thread_local KeptBuffer piece_buffer;  // see util/page_buffer.h for why
  KeptBuffer::Lease lease = piece_buffer.lease(std::min<uint64_t>(span.length(), kMaxCopyBytes));
  uint64_t zeros_begin = span.begin, zeros_end = span.begin;  // the zero run not yet punched
  auto punch_zeros = [&]() -> Status {
    Status punched = zeros_end > zeros_begin
                         ? destination_.punch(zeros_begin, zeros_end - zeros_begin)
                         : Status::ok();
    zeros_begin = zeros_end;
    return punched;
  };
  uint64_t data_regions = 0;
  uint64_t last_data_region = geometry_.region_count();  // none yet
  for (uint64_t pos = span.begin; pos < span.end;) {
    // Stopping the hydrator must not wait for a whole batch of huge regions to be copied.
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      return Status::error(ECANCELED, "hydration of regions " + std::to_string(held.first()) + "-" +
                                          std::to_string(held.first() + held.count() - 1) +
                                          " cancelled");
    }
    const Extent piece{pos, std::min(span.end, pos + kMaxCopyBytes)};
    const std::span<std::byte> buf = lease.span().first(piece.length());
    CLONEFS_RETURN_IF_ERROR(source_.read_for_hydration(piece.begin, buf));
    uint64_t data_begin =
        piece.begin;  // the data run of this piece not yet written: [data_begin, u)
    auto write_data = [&](uint64_t data_end) -> Status {
      if (data_end == data_begin) return Status::ok();
      step.copied_bytes += data_end - data_begin;
      return destination_.write_at(data_begin,
                                   buf.subspan(data_begin - piece.begin, data_end - data_begin));
    };
    for (uint64_t u = piece.begin; u < piece.end;) {
      const uint64_t u_end = std::min(piece.end, u + unit);
      if (all_zero(buf.subspan(u - piece.begin, u_end - u))) {
        CLONEFS_RETURN_IF_ERROR(write_data(u));
        if (zeros_end != u) zeros_begin = u;  // data came between: a new zero run
        zeros_end = data_begin = u_end;
      } else {
        CLONEFS_RETURN_IF_ERROR(punch_zeros());
        if (const uint64_t region = geometry_.region_of(u); region != last_data_region) {
          ++data_regions;
          last_data_region = region;
        }
      }
      u = u_end;
    }
    CLONEFS_RETURN_IF_ERROR(write_data(piece.end));
    pos = piece.end;
  }
  CLONEFS_RETURN_IF_ERROR(punch_zeros());
  counters_.regions_skipped.fetch_add(held.count() - data_regions, std::memory_order_relaxed);
  counters_.regions_copied.fetch_add(data_regions, std::memory_order_relaxed);
  counters_.bytes_copied.fetch_add(step.copied_bytes, std::memory_order_relaxed);
  CLONEFS_RETURN_IF_ERROR(mark_valid(held.first(), held.count()));
  step.hydrated = held.count();
  return step;
}

Result<bool> CloneEngine::hydrate_in_kernel(const Extent& span, const std::atomic<bool>* cancel,
                                            HydrateStep& step) {
  const CopyMethod method = copy_method();
  uint64_t data_regions = 0, data_bytes = 0;
  uint64_t last_data_region = geometry_.region_count();  // none yet
  for (uint64_t pos = span.begin; pos < span.end;) {
    auto data = source_.next_data(pos);
    if (!data) return data.status();
    const uint64_t data_begin = data->has_value() ? std::min((*data)->begin, span.end) : span.end;
    // A hole may still hold an uncommitted write from before a crash.
    if (data_begin > pos) CLONEFS_RETURN_IF_ERROR(destination_.punch(pos, data_begin - pos));
    if (data_begin == span.end) break;
    const uint64_t data_end = std::min((*data)->end, span.end);
    for (uint64_t piece = data_begin; piece < data_end;) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return Status::error(ECANCELED, "hydration of image bytes " + std::to_string(span.begin) +
                                            "-" + std::to_string(span.end) + " cancelled");
      }
      const uint64_t piece_end = std::min(data_end, piece + kMaxKernelCopyBytes);
      Status copied = destination_.copy_from(source_, piece, piece_end - piece, method);
      if (!copied.is_ok()) {
        if (!method_does_not_apply(copied)) return copied;
        // EINVAL is about this range (FICLONERANGE's block alignment at an odd-sized end), the
        // others about the files: only those rule the method out for the rest of the clone.
        if (copied.code() != EINVAL) fall_back_from(method, copied);
        return false;
      }
      piece = piece_end;
    }
    for (uint64_t r = geometry_.region_of(data_begin); r <= geometry_.region_of(data_end - 1);
         ++r) {
      if (r != last_data_region) ++data_regions;
      last_data_region = r;
    }
    data_bytes += data_end - data_begin;
    pos = data_end;
  }
  const uint64_t regions = geometry_.region_of(span.end - 1) - geometry_.region_of(span.begin) + 1;
  counters_.regions_skipped.fetch_add(regions - data_regions, std::memory_order_relaxed);
  if (method == CopyMethod::kReflink) {
    step.shared_bytes += data_bytes;
    counters_.regions_shared.fetch_add(data_regions, std::memory_order_relaxed);
    counters_.bytes_shared.fetch_add(data_bytes, std::memory_order_relaxed);
  } else {
    step.copied_bytes += data_bytes;
    counters_.regions_copied.fetch_add(data_regions, std::memory_order_relaxed);
    counters_.bytes_copied.fetch_add(data_bytes, std::memory_order_relaxed);
  }
  return true;
}

void CloneEngine::fall_back_from(CopyMethod failed, const Status& why) {
  CopyMethod expected = failed;
  if (copy_method_.compare_exchange_strong(expected, fallback_of(failed)) &&
      options_.on_copy_fallback) {
    options_.on_copy_fallback(failed, fallback_of(failed), why);
  }
}

}  // namespace clonefs
