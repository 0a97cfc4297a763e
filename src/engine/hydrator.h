// Background hydration: copies invalid regions from the source while the clone is in use,
// through the engine (so the same commit protocol covers them). Steerable at runtime.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/access_observer.h"
#include "engine/clone_engine.h"
#include "engine/hydration_clock.h"
#include "meta/hydration_settings.h"
#include "meta/region_run.h"

namespace clonefs {

// What the hydrator is doing, as status reports it: copying, or why not.
enum class HydrationState {
  kRunning,   // invalid regions are left to copy and nothing holds the copy back
  kPaused,    // paused by its controls
  kComplete,  // every region is valid
  kIdle,      // nothing it can copy: see state_reason (only unreadable regions left, metadata
              // not writable, stopped)
};
const char* to_string(HydrationState state);

struct HydrationStatus {
  HydrationSettings settings;
  HydrationState state = HydrationState::kRunning;
  std::string state_reason;  // why kIdle ("" otherwise)
  bool running = false;      // the worker threads exist (not stopped)
  bool complete = false;     // every region is valid
  uint64_t failed_regions = 0;
  std::vector<uint64_t> failed_sample;  // the first few failed regions
  double rate_bytes_per_s = 0;          // copy rate over the last few seconds
  double eta_seconds = -1;              // -1: unknown
  uint64_t priority_regions = 0;        // invalid regions queued by fall-through reads
  uint64_t plan_regions = 0;            // regions of the plan (a profile, file hints) given
  uint64_t plan_regions_left = 0;       // of those, still invalid
};

// Worker threads copy one batch each, so they bound the batches in flight whatever the threshold.
inline constexpr unsigned kMaxHydrationWorkers = 8;
// The on-demand queue keeps this many runs (the newest); older requests fall back to the plan or
// address order. A run is at most a read plus its readahead, so this bounds memory, not work.
inline constexpr size_t kMaxPriorityRuns = 256;
// Readahead after sequential fall-through reads grows to this many bytes of regions.
inline constexpr uint64_t kMaxReadaheadBytes = 8 << 20;
// A fall-through read that starts no stream queues this many times its own regions after it:
// the rest of a small file read in pieces, as the kernel's first readahead window for a small
// read (4 reads' worth). Regions queued and never read cost order, not work: they are copied
// once either way.
inline constexpr uint64_t kFirstReadaheadReads = 4;

// Which regions come first: those user reads are waiting on (read_fell_through, newest first,
// with readahead when the reads look sequential), then the plan (set_plan: a recorded profile or
// file hints, in its order), then the rest in address order. Address order yields to user I/O
// (a trickle while it is recent); the first two are the user's own regions and do not. The
// threshold and the rate limit hold for all three.
class Hydrator : private AccessObserver {
 public:
  // Copies up to threshold / batch batches at once, one worker thread per batch in flight, at most
  // `max_workers` threads, started as the settings come to need them. Source read errors are
  // retried `max_retries` times with backoff, then the region is reported failed and skipped.
  // Observes the engine's user I/O until stopped. Every wait is for an event (a setting changed,
  // a copy ended, a region was asked for, stop) or for a deadline on `clock`.
  Hydrator(CloneEngine& engine, HydrationSettings settings,
           unsigned max_workers = kMaxHydrationWorkers, unsigned max_retries = 3,
           HydrationClock& clock = steady_hydration_clock());
  ~Hydrator() override;  // stops
  Hydrator(const Hydrator&) = delete;
  Hydrator& operator=(const Hydrator&) = delete;

  void stop();  // joins the workers and stops observing the engine; later calls do nothing
  void set_paused(bool paused);
  void set_threshold(uint64_t regions);
  void set_batch(uint64_t regions);
  void set_rate(uint64_t bytes_per_second);
  // Replaces the plan: these runs are copied, in this order, before the rest (after on-demand
  // requests). Runs past the image are cut at its end.
  void set_plan(std::vector<RegionRun> runs);
  void append_plan(std::vector<RegionRun> runs);  // after the plan's last run
  // Whether reads that fall through reorder hydration (on by default); off: the queue is
  // dropped and address order (after the plan) is all there is, as before issue 13.
  void set_on_demand(bool on);
  HydrationStatus status() const;
  // Blocks until every region is valid or `timeout` (real time) passes; true if complete.
  bool wait_complete(std::chrono::milliseconds timeout) const;
  // Blocks until every worker waits (for an event or its clock) or `timeout` (real time) passes;
  // true if they all do. With a manual clock, the moment to look at what they did, or to step it.
  bool settle(std::chrono::milliseconds timeout) const;
  // How many times the sleeping workers were all woken to look again (for tests).
  uint64_t wakeups() const;

 private:
  struct BatchResult {
    uint64_t hydrated = 0;
    uint64_t copied_bytes = 0;
  };
  // AccessObserver, called from user I/O threads.
  void user_io() noexcept override;
  void regions_accessed(uint64_t, uint64_t) noexcept override {}
  void read_fell_through(uint64_t first, uint64_t count, RegionRun through) noexcept override;

  struct Claim {
    uint64_t start = 0;
    uint64_t batch = 0;
    bool in_order = false;  // from the address-order cursor (which then moves past it)
  };
  void worker_loop();
  // Requires mu_. Waits on changed_ until woken, or until `deadline` on the clock; counts the
  // worker as asleep meanwhile, for settle().
  void sleep_locked(std::unique_lock<std::mutex>& lock,
                    std::optional<HydrationClock::time_point> deadline = std::nullopt);
  void wake_all_locked();  // requires mu_: every sleeper re-examines its condition
  // Requires mu_: the contiguous invalid, not failed, regions from `start`, at most the batch.
  uint64_t claimable_from(uint64_t start) const;
  // Requires mu_: takes the first claimable regions of the front run of `runs`, dropping runs
  // with none left.
  std::optional<Claim> claim_from_runs(std::deque<RegionRun>& runs);
  uint64_t copies_allowed() const;     // requires mu_
  void update_write_through_locked();  // requires mu_: tells the engine whether reads write through
  void add_workers();  // requires mu_: as many as copies_allowed(), up to max_workers_
  // One batch, then region-by-region retries with backoff if the source failed; regions that
  // still fail are appended to `newly_failed`. Returns early once stop() was called.
  BatchResult copy_batch(uint64_t start, uint64_t batch, std::vector<uint64_t>& newly_failed);
  // Waits `delay` unless stop() is called first; false if it was.
  bool backoff(std::chrono::milliseconds delay);
  // Requires mu_: claims the next batch, from address order only if `in_order`; nullopt when no
  // invalid region is left to try.
  std::optional<Claim> next_claim(bool in_order);
  // Requires mu_: the next address-order batch start.
  std::optional<uint64_t> next_start();
  void record_copy(uint64_t bytes);
  void throttle(uint64_t bytes, std::unique_lock<std::mutex>& lock);
  bool is_failed(uint64_t region) const;

  CloneEngine& engine_;
  const unsigned max_workers_;
  const unsigned max_retries_;
  HydrationClock& clock_;
  // The clock's time of the last user I/O, since its epoch; 0: none yet.
  std::atomic<HydrationClock::duration::rep> last_user_io_{0};

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  mutable std::condition_variable settled_;  // a worker went to sleep
  unsigned asleep_ = 0;                      // guarded by mu_: workers in sleep_locked, not woken
  uint64_t wake_generation_ = 0;             // guarded by mu_: counts wake_all_locked()
  bool on_demand_ = true;                    // guarded by mu_
  std::deque<RegionRun> priority_;           // guarded by mu_: newest request first
  uint64_t stream_first_ = 0;                // guarded by mu_: the last fall-through read...
  uint64_t stream_end_ = 0;                  // ...and the end of what was queued for it
  uint64_t readahead_ = 0;                   // guarded by mu_: regions queued past that read
  std::deque<RegionRun> plan_;               // guarded by mu_: what is left to claim of it
  std::vector<RegionRun> plan_runs_;         // guarded by mu_: the whole plan, for status
  HydrationSettings settings_;               // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::atomic<bool> cancel_{false};          // stopping_, for a copy in progress to see without mu_
  uint64_t cursor_ = 0;                      // guarded by mu_: where the next batch search starts
  uint64_t active_copies_ = 0;               // guarded by mu_
  HydrationClock::time_point last_start_;    // guarded by mu_: the last batch claimed
  std::set<uint64_t> failed_;                // guarded by mu_
  // Guarded by mu_: the source's reconnect count when the oldest of failed_ was tried. Once it
  // moves, the source came back from an outage and they are tried again (a read that failed
  // during one says nothing about the region).
  uint64_t failed_epoch_ = 0;
  HydrationClock::time_point rate_window_start_;  // guarded by mu_
  uint64_t rate_window_bytes_ = 0;                // guarded by mu_
  double recent_rate_ = 0;                        // guarded by mu_
  HydrationClock::time_point last_copy_;          // guarded by mu_: the last bytes hydrated
  HydrationClock::time_point budget_start_;       // guarded by mu_ (rate limit)
  uint64_t budget_used_ = 0;                      // guarded by mu_
  std::vector<std::thread> workers_;  // grows under mu_ while !stopping_; joined by stop()
};

}  // namespace clonefs
