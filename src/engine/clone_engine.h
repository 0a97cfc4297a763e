// The clone engine: reads, writes, discards and flushes on byte ranges of the image, following
// docs/SEMANTICS.md. Knows nothing of FUSE; thread-safe (FUSE calls it from many threads).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/access_observer.h"
#include "engine/region_locks.h"
#include "engine/surviving_regions.h"
#include "io/devices.h"
#include "meta/geometry.h"
#include "meta/metadata_store.h"
#include "meta/region_bitmap.h"

namespace clonefs {

enum class MetadataMode { kReadWrite, kReadOnly, kFail };
const char* to_string(MetadataMode mode);  // "rw", "ro", "fail"

// Points where a test can act between two steps of the engine, to make a race deterministic.
// Empty in production.
struct EngineHooks {
  // In read(): after the first region of a run was tested, before the rest of the run is.
  std::function<void(uint64_t region)> after_read_validity_test;
};

struct EngineOptions {
  bool copy_on_read = false;
  // Commit the open transaction this often when it is not empty. Zero: only on flush/close.
  std::chrono::milliseconds commit_period{1000};
  EngineHooks hooks;
  // Told when a periodic commit fails (no caller is there to see the error); may log it.
  std::function<void(const Status&)> on_commit_failure;
  // The best copy method hydration may use; the one used is the best the devices allow up to
  // this (DestinationDevice::probe_copy at start). kReadWrite: always through the engine.
  CopyMethod best_copy_method = CopyMethod::kReflink;
  // Told when a copy method failed in a way that rules it out for this clone (other file
  // system, no support after all) and hydration moves to `to` for good; may log it.
  std::function<void(CopyMethod from, CopyMethod to, const Status& why)> on_copy_fallback;
};

// Monotonic counts, for status and for tests that check how often things happen.
struct EngineCounters {
  std::atomic<uint64_t> destination_syncs{0};
  std::atomic<uint64_t> metadata_commits{0};
  std::atomic<uint64_t> regions_copied{0};   // read from the source and written whole
  std::atomic<uint64_t> regions_skipped{0};  // made valid without copying (holes, zeros)
  std::atomic<uint64_t> bytes_copied{0};
  std::atomic<uint64_t> bytes_fell_through{0};  // user reads served from the source
  // Of those, written into the destination on the way (whole invalid regions: write-through).
  std::atomic<uint64_t> bytes_written_through{0};
  // Made valid by sharing the source's extents (reflink): nothing copied, no space used.
  std::atomic<uint64_t> regions_shared{0};
  std::atomic<uint64_t> bytes_shared{0};
};

struct EngineStatus {
  uint64_t regions_total = 0;
  uint64_t regions_valid = 0;
  uint64_t regions_in_flight = 0;
  uint64_t transaction_regions = 0;
  MetadataMode mode = MetadataMode::kReadWrite;
  std::string mode_reason;
};

// The most bytes one copy moves in a single read or write, whatever the region size and batch:
// hydration reads a batch, and a partial write into an invalid region copies its region, in
// pieces of at most this. Without it a buffer is region size x batch (1 GiB regions at batch 16:
// 16 GiB per worker) and a failed allocation ends the daemon. 4 MiB: the largest buffer a thread
// keeps between requests (KeptBuffer::kKeptBytes), so a piece never allocates, and already far
// past the size where larger sequential I/O stops paying (the 1 MiB rows in README Performance).
inline constexpr uint64_t kMaxCopyBytes = 4 << 20;

// The most bytes one copy inside the kernel (copy_file_range, reflink) moves between two looks at
// the cancel flag: no buffer is involved, but stopping must not wait for a whole batch of huge
// regions to be copied on a slow disk.
inline constexpr uint64_t kMaxKernelCopyBytes = 16 << 20;

// How one hydration step went.
struct HydrateStep {
  uint64_t first = 0;         // first region looked at
  uint64_t hydrated = 0;      // regions made valid by this step (copied or skipped)
  uint64_t copied_bytes = 0;  // read and written, or copied inside the kernel
  uint64_t shared_bytes = 0;  // shared with the source (reflink)
};

class CloneEngine {
 public:
  // Loads the committed bitmap from `store` and starts the periodic committer.
  static Result<std::unique_ptr<CloneEngine>> start(const Geometry& geometry, SourceDevice& source,
                                                    DestinationDevice& destination,
                                                    RegionStore& store, EngineOptions options);
  ~CloneEngine();  // stops the committer; does not commit (call close() for that)
  CloneEngine(const CloneEngine&) = delete;
  CloneEngine& operator=(const CloneEngine&) = delete;

  // All offsets are image offsets; ranges must lie inside the image (EINVAL otherwise).
  Status read(uint64_t offset, std::span<std::byte> buf);
  // For a reader that can take bytes straight from a descriptor (a splice into a FUSE reply):
  // the destination's descriptor if [offset, offset + length) lies wholly in valid regions, so
  // that its bytes are the destination's at the same offsets; -1 otherwise (or if the
  // destination has none), and the caller reads through read(). Noted as a read. Reading the
  // descriptor then is what read() does for valid regions: no lock is held (a valid region is
  // never copied into again; a write to it races the read as it would race read()).
  Result<int> valid_destination(uint64_t offset, uint64_t length);
  Status write(uint64_t offset, std::span<const std::byte> buf);
  // Punch/zero-range: afterwards the range reads zeros; whole regions become valid uncopied.
  Status discard(uint64_t offset, uint64_t length);
  // The user's fsync: returns once every write before it is durable and committed.
  Status flush();
  // Final commit and stop. Further calls fail.
  Status close();

  // Makes up to `max_regions` contiguous invalid regions starting at `first` valid, copying from
  // the source in pieces of at most kMaxCopyBytes (holes and all-zero regions or pieces are
  // punched, not copied). Regions in flight or already valid end the batch early. Returns the
  // regions done; a source read error leaves them invalid. Once `*cancel` is true it stops
  // before the next piece with ECANCELED, leaving the batch invalid.
  Result<HydrateStep> hydrate(uint64_t first, uint64_t max_regions,
                              const std::atomic<bool>* cancel = nullptr);

  // Before any I/O: makes valid (in the open transaction) every region `surviving` holds from a
  // serving process that died (engine/surviving_regions.h), and records there every region made
  // valid from now on. Returns how many regions were adopted. A record spoiled by a failed commit
  // puts the clone in fail mode instead, as the predecessor was.
  uint64_t adopt_surviving(std::unique_ptr<SurvivingRegions> surviving);

  const Geometry& geometry() const { return geometry_; }
  const RegionBitmap& bitmap() const { return bitmap_; }
  const SourceDevice& source() const { return source_; }
  const EngineCounters& counters() const { return counters_; }
  // How hydration copies now: chosen at start, lowered for good if a method fails to apply.
  CopyMethod copy_method() const { return copy_method_.load(std::memory_order_relaxed); }
  // The regions one hydration step should take, given the batch asked for. Sharing extents
  // costs per call, not per byte: a reflink step takes at least kMaxKernelCopyBytes of regions
  // (16 GiB on XFS at 16 KiB regions: 2.2-2.8 s at batch 16, 0.5-1.1 s at 256 or 1,024).
  uint64_t step_regions(uint64_t batch) const {
    if (copy_method() != CopyMethod::kReflink) return batch;
    return std::max<uint64_t>(batch, kMaxKernelCopyBytes / geometry_.region_size());
  }
  EngineStatus status() const;
  // Whether fall-through reads write the whole invalid regions they read into the destination
  // and make them valid (write_through.cc). Off by default; the hydrator turns it on while it
  // runs with on-demand priority, so hydration does not read those regions again. Never with
  // reflink (sharing is free, writing is not).
  void set_write_through(bool on);
  // Observers are told of user I/O from the threads doing it, until removed; remove_observer
  // returns once no call into it is in progress.
  void add_observer(AccessObserver* observer);
  void remove_observer(AccessObserver* observer);

 private:
  CloneEngine(const Geometry& geometry, SourceDevice& source, DestinationDevice& destination,
              RegionStore& store, EngineOptions options);
  Status check_range(uint64_t offset, uint64_t length, const char* op) const;
  void note_user_io();
  // Tells the observers; `fell_through`: the regions are read from the source.
  // `through`: of a fall-through read, the regions it will write through (whole_regions()).
  void note_access(uint64_t first, uint64_t count, bool fell_through, RegionRun through = {});
  // The regions [offset, offset + length) holds whole.
  RegionRun whole_regions(uint64_t offset, uint64_t length) const;
  Status usable() const;
  Status writable() const;
  // Records regions as valid in the open transaction. Fails (and records nothing) unless the
  // metadata mode is read-write.
  Status mark_valid(uint64_t first, uint64_t count);
  // mark_valid's work with mu_ held, a bitmap word and a transaction chunk at a time.
  void mark_valid_range_locked(uint64_t first, uint64_t count);
  // With `region` held: copies it whole from the source and makes it valid (copy-on-read).
  Status copy_region_locked(uint64_t region);
  // With `region` held and invalid: source data with `data` overlaid at `offset` (`zero_length`
  // zeros if `data` is empty), written in pieces of at most kMaxCopyBytes, then made valid.
  Status merge_region_locked(uint64_t region, uint64_t offset, std::span<const std::byte> data,
                             uint64_t zero_length);
  Status read_invalid_run(uint64_t offset, std::span<std::byte> buf);
  bool write_through_on() const;
  // After a fall-through read of `data` at `offset` from the source: writes the regions it holds
  // whole, still invalid and free, into the destination and makes them valid. Best effort.
  void write_through(uint64_t offset, std::span<const std::byte> data);
  // hydrate()'s copy of `span` (held, region-aligned, holding data) inside the kernel by
  // copy_method(), holes punched. False: the method did not apply to part of it; the caller
  // reads and writes the whole span instead.
  Result<bool> hydrate_in_kernel(const Extent& span, const std::atomic<bool>* cancel,
                                 HydrateStep& step);
  // Lowers copy_method() from `failed` to the next method, once, telling on_copy_fallback.
  void fall_back_from(CopyMethod failed, const Status& why);
  // Discard of part of one region: punched if valid, else merged with zeros (copied).
  Status discard_partial(uint64_t region, uint64_t offset, uint64_t length);
  // Discard of whole regions [first, first + count), held as one run: one punch, one update.
  Status discard_whole(uint64_t first, uint64_t count);
  Status commit();
  Status commit_serialized();  // requires commit_mu_
  // Why commit() refuses once the mode is not read-write. Requires mu_.
  Status refusal_locked() const;
  // Rolls back to the committed bitmap and switches to read-only (or fail) mode.
  void fail_commit(const Status& cause, std::span<const ChunkImage> frozen);
  // With mu_ held: ends the open transaction, returning its chunks (unsorted) and starting a new
  // one.
  std::vector<uint64_t> take_transaction_locked();
  void committer_loop();

  const Geometry geometry_;
  SourceDevice& source_;
  DestinationDevice& destination_;
  RegionStore& store_;
  const EngineOptions options_;
  // Lock order. Four locks; an arrow means "may be held while taking":
  //   committer_mu_ -> mu_          the committer checks for a pending transaction
  //   commit_mu_    -> mu_          the freeze, the rollback of a failed commit
  //   regions (locks_) -> mu_       marking a region valid while it is in flight
  //   RegionLocks' own mutex         a leaf, held only inside RegionLocks' methods
  // Nothing else nests. mu_ is a leaf: held for memory updates only, never over I/O (the
  // destination sync and the SQLite commit run under commit_mu_ alone, region copies under their
  // region locks alone). commit_mu_ and region locks are never held together: a commit does not
  // wait for regions in flight (their bits are set after their data is written, so they belong to
  // the next transaction), and no I/O path commits. committer_mu_ is dropped before the committer
  // commits, and close() drops it before its final commit.
  RegionBitmap bitmap_;  // bits set only under mu_ (so a freeze sees a consistent set)
  RegionLocks locks_;
  EngineCounters counters_;
  std::atomic<CopyMethod> copy_method_{CopyMethod::kReadWrite};
  std::atomic<bool> write_through_{false};
  // Taken shared by every user I/O (a leaf: nothing else is taken under it but the observers'
  // own locks); exclusive only to add or remove one.
  mutable std::shared_mutex observers_mu_;
  std::vector<AccessObserver*> observers_;  // guarded by observers_mu_

  mutable std::mutex mu_;
  // The open transaction, guarded by mu_: the bitmap chunks holding regions made valid since the
  // last freeze (a list plus one bit per chunk so each is listed once), and how many regions.
  // Chunks, not regions: a commit writes whole chunks anyway, and marking a 1 TiB hole valid
  // would otherwise list 16 Mi regions (128 MiB) where 4,096 chunks say the same.
  std::vector<uint64_t> transaction_chunks_;
  std::vector<bool> chunk_in_transaction_;
  uint64_t transaction_regions_ = 0;
  MetadataMode mode_ = MetadataMode::kReadWrite;  // guarded by mu_
  std::string mode_reason_;                       // guarded by mu_
  bool closed_ = false;                           // guarded by mu_
  std::unique_ptr<SurvivingRegions> surviving_;   // guarded by mu_; null unless supervised

  std::mutex commit_mu_;  // serialises commits: one freeze-sync-commit sequence at a time

  std::mutex committer_mu_;
  std::condition_variable committer_wake_;
  bool committer_stop_ = false;  // guarded by committer_mu_
  std::thread committer_;
};

}  // namespace clonefs
