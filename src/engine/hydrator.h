// Background hydration: copies invalid regions from the source while the clone is in use,
// through the engine (so the same commit protocol covers them). Steerable at runtime.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/clone_engine.h"
#include "meta/hydration_settings.h"

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
};

// Worker threads copy one batch each, so they bound the batches in flight whatever the threshold.
inline constexpr unsigned kMaxHydrationWorkers = 8;
class Hydrator {
 public:
  // Copies up to threshold / batch batches at once, one worker thread per batch in flight, at most
  // `max_workers` threads, started as the settings come to need them. Source read errors are
  // retried `max_retries` times with backoff, then the region is reported failed and skipped.
  Hydrator(CloneEngine& engine, HydrationSettings settings,
           unsigned max_workers = kMaxHydrationWorkers, unsigned max_retries = 3);
  ~Hydrator();  // stops
  Hydrator(const Hydrator&) = delete;
  Hydrator& operator=(const Hydrator&) = delete;

  void stop();
  void set_paused(bool paused);
  void set_threshold(uint64_t regions);
  void set_batch(uint64_t regions);
  void set_rate(uint64_t bytes_per_second);
  HydrationStatus status() const;
  // Blocks until every region is valid or `timeout` passes; true if complete.
  bool wait_complete(std::chrono::milliseconds timeout) const;

 private:
  struct BatchResult {
    uint64_t hydrated = 0;
    uint64_t copied_bytes = 0;
  };
  void worker_loop();
  uint64_t copies_allowed() const;  // requires mu_
  void add_workers();               // requires mu_: as many as copies_allowed(), up to max_workers_
  // One batch, then region-by-region retries with backoff if the source failed; regions that
  // still fail are appended to `newly_failed`. Returns early once stop() was called.
  BatchResult copy_batch(uint64_t start, uint64_t batch, std::vector<uint64_t>& newly_failed);
  // Waits `delay` unless stop() is called first; false if it was.
  bool backoff(std::chrono::milliseconds delay);
  // Claims the next batch start; nullopt when no invalid region is left to try.
  std::optional<uint64_t> next_start();
  void record_copy(uint64_t bytes);
  void throttle(uint64_t bytes, std::unique_lock<std::mutex>& lock);
  bool is_failed(uint64_t region) const;

  CloneEngine& engine_;
  const unsigned max_workers_;
  const unsigned max_retries_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  HydrationSettings settings_;       // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::atomic<bool> cancel_{false};  // stopping_, for a copy in progress to see without mu_
  uint64_t cursor_ = 0;              // guarded by mu_: where the next batch search starts
  uint64_t active_copies_ = 0;       // guarded by mu_
  std::chrono::steady_clock::time_point last_start_;  // guarded by mu_: the last batch claimed
  std::set<uint64_t> failed_;                         // guarded by mu_
  std::chrono::steady_clock::time_point rate_window_start_;  // guarded by mu_
  uint64_t rate_window_bytes_ = 0;                           // guarded by mu_
  double recent_rate_ = 0;                                   // guarded by mu_
  std::chrono::steady_clock::time_point last_copy_;     // guarded by mu_: the last bytes hydrated
  std::chrono::steady_clock::time_point budget_start_;  // guarded by mu_ (rate limit)
  uint64_t budget_used_ = 0;                            // guarded by mu_
  std::vector<std::thread> workers_;  // grows under mu_ while !stopping_; joined by stop()
};

}  // namespace clonefs
