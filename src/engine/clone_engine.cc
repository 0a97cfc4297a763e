#include "engine/clone_engine.h"

#include <algorithm>
#include <cstring>

#include "util/page_buffer.h"

namespace clonefs {

const char* to_string(MetadataMode mode) {
  switch (mode) {
    case MetadataMode::kReadWrite: return "rw";
    case MetadataMode::kReadOnly: return "ro";
    case MetadataMode::kFail: return "fail";
  }
  return "?";
}

CloneEngine::CloneEngine(const Geometry& geometry, SourceDevice& source, DestinationDevice& destination,
                         RegionStore& store, EngineOptions options)
    : geometry_(geometry),
      source_(source),
      destination_(destination),
      store_(store),
      options_(options),
      bitmap_(geometry.region_count()),
      chunk_in_transaction_(bitmap_.chunk_count(), false) {}

Result<std::unique_ptr<CloneEngine>> CloneEngine::start(const Geometry& geometry, SourceDevice& source,
                                                        DestinationDevice& destination, RegionStore& store,
                                                        EngineOptions options) {
  std::unique_ptr<CloneEngine> engine(new CloneEngine(geometry, source, destination, store, options));
  CLONEFS_RETURN_IF_ERROR(store.load(engine->bitmap_));
  if (options.commit_period.count() > 0) {
    engine->committer_ = std::thread([e = engine.get()] { e->committer_loop(); });
  }
  return engine;
}

CloneEngine::~CloneEngine() {
  {
    std::lock_guard lock(committer_mu_);
    committer_stop_ = true;
  }
  committer_wake_.notify_all();
  if (committer_.joinable()) committer_.join();
}

Status CloneEngine::check_range(uint64_t offset, uint64_t length, const char* op) const {
  if (offset > geometry_.image_size() || length > geometry_.image_size() - offset) {
    return Status::error(EINVAL, std::string(op) + " of " + std::to_string(length) + " bytes at offset " +
                                     std::to_string(offset) + " is past the end of the image (" +
                                     std::to_string(geometry_.image_size()) + " bytes)");
  }
  return usable();
}

Status CloneEngine::usable() const {
  std::lock_guard lock(mu_);
  if (closed_) return Status::error(EIO, "clone is closed");
  if (mode_ == MetadataMode::kFail) return Status::error(EIO, "clone is in fail mode: " + mode_reason_);
  return Status::ok();
}

// Read-write mode: regions may still become valid. Checked before anything is written for a
// region that would need to, so read-only mode never leaves orphan copies in the destination.
Status CloneEngine::writable() const {
  std::lock_guard lock(mu_);
  if (closed_) return Status::error(EIO, "clone is closed");
  if (mode_ != MetadataMode::kReadWrite) return refusal_locked();
  return Status::ok();
}

void CloneEngine::note_user_io() {
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  last_user_io_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(),
                         std::memory_order_relaxed);
}

Status CloneEngine::mark_valid(uint64_t first, uint64_t count) {
  std::lock_guard lock(mu_);
  if (mode_ != MetadataMode::kReadWrite) {
    return Status::error(EIO, std::string("metadata is ") + to_string(mode_) +
                                  " (no region can become valid): " + mode_reason_);
  }
  for (uint64_t r = first; r < first + count; ++r) {
    if (!bitmap_.set(r)) continue;
    ++transaction_regions_;
    uint64_t chunk = RegionBitmap::chunk_of(r);
    if (!chunk_in_transaction_[chunk]) {
      chunk_in_transaction_[chunk] = true;
      transaction_chunks_.push_back(chunk);
    }
  }
  return Status::ok();
}

Status CloneEngine::merge_region_locked(uint64_t region, uint64_t offset, std::span<const std::byte> data,
                                        uint64_t zero_length) {
  CLONEFS_RETURN_IF_ERROR(writable());
  Extent extent = geometry_.region_extent(region);
  thread_local KeptBuffer region_buffer;  // see util/page_buffer.h for why
  KeptBuffer::Lease lease = region_buffer.lease(extent.length());
  std::span<std::byte> buf = lease.span();
  CLONEFS_RETURN_IF_ERROR(source_.read_at(extent.begin, buf));
  if (data.empty()) {
    std::memset(buf.data() + (offset - extent.begin), 0, zero_length);
  } else {
    std::memcpy(buf.data() + (offset - extent.begin), data.data(), data.size());
  }
  CLONEFS_RETURN_IF_ERROR(destination_.write_at(extent.begin, buf));
  counters_.regions_copied.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_copied.fetch_add(buf.size(), std::memory_order_relaxed);
  return mark_valid(region, 1);
}

Status CloneEngine::copy_region_locked(uint64_t region) {
  return merge_region_locked(region, geometry_.region_extent(region).begin, {}, 0);
}

Status CloneEngine::read_invalid_run(uint64_t offset, std::span<std::byte> buf) {
  if (!options_.copy_on_read) {
    // Wait out copies in progress, then read the whole run from the source in one call if it
    // is still invalid throughout (the common case: a fall-through read).
    for (uint64_t r = geometry_.region_of(offset); r <= geometry_.region_of(offset + buf.size() - 1); ++r) {
      locks_.wait_idle(r);
    }
    bool still_invalid = true;
    for (uint64_t r = geometry_.region_of(offset); r <= geometry_.region_of(offset + buf.size() - 1); ++r) {
      still_invalid = still_invalid && !bitmap_.test(r);
    }
    if (still_invalid) return source_.read_at(offset, buf);
  }
  // Region by region: each may have become valid (or be mid-copy) since the caller looked.
  uint64_t done = 0;
  while (done < buf.size()) {
    uint64_t pos = offset + done;
    uint64_t region = geometry_.region_of(pos);
    uint64_t n = std::min<uint64_t>(buf.size() - done, geometry_.region_extent(region).end - pos);
    std::span<std::byte> piece = buf.subspan(done, n);
    if (options_.copy_on_read && !bitmap_.test(region)) {
      RegionLock lock(locks_, region);
      if (!bitmap_.test(region)) {
        // A failed copy still leaves a readable region: serve it from the source.
        if (!copy_region_locked(region).is_ok()) {
          CLONEFS_RETURN_IF_ERROR(source_.read_at(pos, piece));
          done += n;
          continue;
        }
      }
    } else {
      locks_.wait_idle(region);
    }
    if (bitmap_.test(region)) {
      CLONEFS_RETURN_IF_ERROR(destination_.read_at(pos, piece));
    } else {
      CLONEFS_RETURN_IF_ERROR(source_.read_at(pos, piece));
    }
    done += n;
  }
  return Status::ok();
}

Status CloneEngine::read(uint64_t offset, std::span<std::byte> buf) {
  CLONEFS_RETURN_IF_ERROR(check_range(offset, buf.size(), "read"));
  note_user_io();
  // Runs of valid regions are one destination read; invalid ones go region by region.
  uint64_t done = 0;
  while (done < buf.size()) {
    uint64_t pos = offset + done;
    const uint64_t first = geometry_.region_of(pos);
    const bool valid = bitmap_.test(first);
    if (options_.hooks.after_read_validity_test) options_.hooks.after_read_validity_test(first);
    // The run starts with the region just tested, whatever it is by now: testing it a second
    // time could see it changed and leave an empty run (at offset 0, a run of 2^64 bytes).
    uint64_t run_end = geometry_.region_extent(first).end;
    while (run_end < offset + buf.size() && bitmap_.test(geometry_.region_of(run_end)) == valid) {
      run_end = geometry_.region_extent(geometry_.region_of(run_end)).end;
    }
    run_end = std::min<uint64_t>(run_end, offset + buf.size());
    std::span<std::byte> run = buf.subspan(done, run_end - pos);
    CLONEFS_RETURN_IF_ERROR(valid ? destination_.read_at(pos, run) : read_invalid_run(pos, run));
    done += run.size();
  }
  return Status::ok();
}

Status CloneEngine::write(uint64_t offset, std::span<const std::byte> buf) {
  CLONEFS_RETURN_IF_ERROR(check_range(offset, buf.size(), "write"));
  note_user_io();
  uint64_t done = 0;
  while (done < buf.size()) {
    uint64_t pos = offset + done;
    uint64_t region = geometry_.region_of(pos);
    Extent extent = geometry_.region_extent(region);
    if (bitmap_.test(region)) {
      // Valid regions take the write as it comes: extend over the whole run of valid regions.
      uint64_t run_end = extent.end;
      while (run_end < offset + buf.size() && bitmap_.test(geometry_.region_of(run_end))) {
        run_end = geometry_.region_extent(geometry_.region_of(run_end)).end;
      }
      uint64_t n = std::min<uint64_t>(run_end, offset + buf.size()) - pos;
      CLONEFS_RETURN_IF_ERROR(destination_.write_at(pos, buf.subspan(done, n)));
      done += n;
      continue;
    }
    uint64_t n = std::min<uint64_t>(buf.size() - done, extent.end - pos);
    auto piece = buf.subspan(done, n);
    RegionLock lock(locks_, region);
    if (bitmap_.test(region)) {
      CLONEFS_RETURN_IF_ERROR(destination_.write_at(pos, piece));
    } else if (n == extent.length()) {
      // Covers the region whole: nothing of the source survives, so no copy.
      CLONEFS_RETURN_IF_ERROR(writable());
      CLONEFS_RETURN_IF_ERROR(destination_.write_at(pos, piece));
      CLONEFS_RETURN_IF_ERROR(mark_valid(region, 1));
    } else {
      CLONEFS_RETURN_IF_ERROR(merge_region_locked(region, pos, piece, 0));
    }
    done += n;
  }
  return Status::ok();
}

Status CloneEngine::discard(uint64_t offset, uint64_t length) {
  CLONEFS_RETURN_IF_ERROR(check_range(offset, length, "discard"));
  note_user_io();
  uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    uint64_t region = geometry_.region_of(pos);
    Extent extent = geometry_.region_extent(region);
    if (bitmap_.test(region)) {
      uint64_t run_end = extent.end;
      while (run_end < end && bitmap_.test(geometry_.region_of(run_end))) {
        run_end = geometry_.region_extent(geometry_.region_of(run_end)).end;
      }
      run_end = std::min(run_end, end);
      CLONEFS_RETURN_IF_ERROR(destination_.punch(pos, run_end - pos));
      pos = run_end;
      continue;
    }
    uint64_t n = std::min(end, extent.end) - pos;
    RegionLock lock(locks_, region);
    if (bitmap_.test(region)) {
      CLONEFS_RETURN_IF_ERROR(destination_.punch(pos, n));
    } else if (n == extent.length()) {
      // The skip-hydration hint: the whole region is zeros now, valid without a copy.
      CLONEFS_RETURN_IF_ERROR(writable());
      CLONEFS_RETURN_IF_ERROR(destination_.punch(pos, n));
      CLONEFS_RETURN_IF_ERROR(mark_valid(region, 1));
      counters_.regions_skipped.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Part of an invalid region: the rest must keep reading the source, so copy it first.
      CLONEFS_RETURN_IF_ERROR(merge_region_locked(region, pos, {}, n));
    }
    pos += n;
  }
  return Status::ok();
}

EngineStatus CloneEngine::status() const {
  EngineStatus s;
  s.regions_total = geometry_.region_count();
  s.regions_valid = bitmap_.valid_count();
  s.regions_in_flight = locks_.in_flight();
  std::lock_guard lock(mu_);
  s.transaction_regions = transaction_regions_;
  s.mode = mode_;
  s.mode_reason = mode_reason_;
  return s;
}

}  // namespace clonefs
