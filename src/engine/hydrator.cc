#include "engine/hydrator.h"

#include <algorithm>
#include <system_error>

namespace clonefs {
namespace {

using Clock = std::chrono::steady_clock;

// User I/O goes first: while it was seen this recently, workers wait...
constexpr auto kUserQuiet = std::chrono::milliseconds(20);
// ...but still copy one batch this often, so a constant load cannot starve hydration.
constexpr auto kTrickleInterval = std::chrono::milliseconds(100);
// After a copy threw (an allocation failed), so a worker short of memory does not spin.
constexpr auto kExceptionBackoff = std::chrono::milliseconds(100);
// A rate window left open this long without a copy to close it no longer stands for "recent":
// the rate reported falls to the open window's mean, and to 0 once nothing was copied for as
// long.
constexpr double kStaleRateSeconds = 2.0;

HydrationSettings clamped(HydrationSettings settings) {
  settings.threshold = std::clamp<uint64_t>(settings.threshold, 1, kMaxHydrationThreshold);
  settings.batch = std::clamp<uint64_t>(settings.batch, 1, kMaxHydrationBatch);
  return settings;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* to_string(HydrationState state) {
  switch (state) {
    case HydrationState::kRunning:
      return "running";
    case HydrationState::kPaused:
      return "paused";
    case HydrationState::kComplete:
      return "complete";
    case HydrationState::kIdle:
      return "idle";
  }
  return "?";
}

Hydrator::Hydrator(CloneEngine& engine, HydrationSettings settings, unsigned max_workers,
                   unsigned max_retries)
    : engine_(engine),
      max_workers_(std::max(1u, max_workers)),
      max_retries_(max_retries),
      settings_(clamped(settings)) {
  std::lock_guard lock(mu_);
  rate_window_start_ = budget_start_ = Clock::now();
  add_workers();
}

Hydrator::~Hydrator() { stop(); }

void Hydrator::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cancel_.store(true, std::memory_order_relaxed);
  }
  changed_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void Hydrator::set_paused(bool paused) {
  std::lock_guard lock(mu_);
  settings_.paused = paused;
  changed_.notify_all();
}

void Hydrator::set_threshold(uint64_t regions) {
  std::lock_guard lock(mu_);
  settings_.threshold = std::clamp<uint64_t>(regions, 1, kMaxHydrationThreshold);
  add_workers();
  changed_.notify_all();
}

void Hydrator::set_batch(uint64_t regions) {
  std::lock_guard lock(mu_);
  settings_.batch = std::clamp<uint64_t>(regions, 1, kMaxHydrationBatch);
  add_workers();
  changed_.notify_all();
}

uint64_t Hydrator::copies_allowed() const {
  return std::max<uint64_t>(1, settings_.threshold / std::max<uint64_t>(1, settings_.batch));
}

// Threads are only added: a lower threshold leaves the extra ones waiting on copies_allowed().
// If the system refuses a thread, the ones already running copy fewer batches at once.
void Hydrator::add_workers() {
  uint64_t wanted = std::min<uint64_t>(max_workers_, copies_allowed());
  try {
    while (!stopping_ && workers_.size() < wanted) workers_.emplace_back([this] { worker_loop(); });
  } catch (const std::system_error&) {
    if (workers_.empty()) throw;  // no hydration at all: the caller must know
  }
}

void Hydrator::set_rate(uint64_t bytes_per_second) {
  std::lock_guard lock(mu_);
  settings_.rate = bytes_per_second;
  budget_start_ = Clock::now();
  budget_used_ = 0;
  changed_.notify_all();
}

bool Hydrator::is_failed(uint64_t region) const { return failed_.contains(region); }

std::optional<uint64_t> Hydrator::next_start() {
  const RegionBitmap& bitmap = engine_.bitmap();
  for (int pass = 0; pass < 2; ++pass) {
    auto region = bitmap.next_invalid(pass == 0 ? cursor_ : 0);
    while (region && is_failed(*region)) region = bitmap.next_invalid(*region + 1);
    if (region) return region;
  }
  return std::nullopt;
}

void Hydrator::worker_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (settings_.paused || active_copies_ >= copies_allowed() ||
        engine_.status().mode != MetadataMode::kReadWrite) {
      changed_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    auto since_user = std::chrono::nanoseconds(now_ns() - engine_.last_user_io_ns());
    // The trickle is shared: one batch at a time and one per interval, however many workers.
    if (since_user < kUserQuiet &&
        (active_copies_ > 0 || Clock::now() - last_start_ < kTrickleInterval)) {
      changed_.wait_for(lock, std::chrono::milliseconds(5));
      continue;
    }
    auto start = next_start();
    if (!start) {  // complete, or only failed regions left
      changed_.wait_for(lock, std::chrono::milliseconds(500));
      continue;
    }
    // A batch stops before the next failed region, so one bad region does not sink its batch.
    uint64_t batch = engine_.step_regions(settings_.batch);
    if (auto next_failed = failed_.lower_bound(*start); next_failed != failed_.end()) {
      batch = std::min(batch, *next_failed - *start);
    }
    cursor_ = *start + batch;
    last_start_ = Clock::now();
    ++active_copies_;
    lock.unlock();
    std::vector<uint64_t> newly_failed;
    BatchResult result;
    bool threw = false;
    // Nothing may escape a worker thread (std::terminate would end the daemon). A copy that
    // throws, std::bad_alloc above all, is a failed batch: its regions stay invalid, not
    // failed, and are tried again when the cursor comes round.
    try {
      result = copy_batch(*start, batch, newly_failed);
    } catch (...) {
      threw = true;
      newly_failed.clear();
    }
    lock.lock();
    --active_copies_;
    if (threw) {
      changed_.notify_all();
      changed_.wait_for(lock, kExceptionBackoff, [&] { return stopping_; });
      continue;
    }
    failed_.insert(newly_failed.begin(), newly_failed.end());
    record_copy(result.hydrated * engine_.geometry().region_size());
    throttle(result.copied_bytes, lock);
    changed_.notify_all();
  }
}

Hydrator::BatchResult Hydrator::copy_batch(uint64_t start, uint64_t batch,
                                           std::vector<uint64_t>& newly_failed) {
  BatchResult result;
  auto step = engine_.hydrate(start, batch, &cancel_);
  if (step) {
    if (step->hydrated == 0) std::this_thread::yield();  // region busy with user I/O
    return {step->hydrated, step->copied_bytes};
  }
  if (engine_.status().mode != MetadataMode::kReadWrite) return result;  // the worker loop waits
  // Retry region by region with backoff, to find which one the source cannot read. Every wait
  // and every attempt gives way to stop(): at batch 256 the waits alone were 3.5 minutes.
  for (uint64_t r = start; r < start + batch && r < engine_.geometry().region_count(); ++r) {
    bool done = false;
    for (unsigned attempt = 0; attempt <= max_retries_ && !done; ++attempt) {
      if (attempt > 0 && !backoff(std::chrono::milliseconds(10 << (2 * attempt)))) return result;
      if (cancel_.load(std::memory_order_relaxed)) return result;
      auto single = engine_.hydrate(r, 1, &cancel_);
      done = single.is_ok();
      if (done) {
        result.hydrated += single->hydrated;
        result.copied_bytes += single->copied_bytes;
      }
    }
    if (!done && !engine_.bitmap().test(r)) newly_failed.push_back(r);
  }
  return result;
}

bool Hydrator::backoff(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  return !changed_.wait_for(lock, delay, [&] { return stopping_; });
}

void Hydrator::record_copy(uint64_t bytes) {
  if (bytes > 0) last_copy_ = Clock::now();
  rate_window_bytes_ += bytes;
  double seconds = std::chrono::duration<double>(Clock::now() - rate_window_start_).count();
  if (seconds >= 1.0) {
    recent_rate_ = static_cast<double>(rate_window_bytes_) / seconds;
    rate_window_start_ = Clock::now();
    rate_window_bytes_ = 0;
  }
}

// Token bucket over the bytes actually copied: sleeps until the budget allows them.
void Hydrator::throttle(uint64_t bytes, std::unique_lock<std::mutex>& lock) {
  if (settings_.rate == 0) return;
  auto now = Clock::now();
  if (now - budget_start_ > std::chrono::seconds(2)) {  // forget old slack so bursts stay small
    budget_start_ = now;
    budget_used_ = 0;
  }
  budget_used_ += bytes;
  double allowed_at = static_cast<double>(budget_used_) / static_cast<double>(settings_.rate);
  auto wake = budget_start_ + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(allowed_at));
  uint64_t rate = settings_.rate;
  changed_.wait_until(lock, wake, [&] { return stopping_ || settings_.rate != rate; });
}

HydrationStatus Hydrator::status() const {
  std::lock_guard lock(mu_);
  HydrationStatus s;
  s.settings = settings_;
  s.running = !stopping_;
  s.complete = engine_.bitmap().all_valid();
  s.failed_regions = failed_.size();
  for (uint64_t r : failed_) {
    if (s.failed_sample.size() >= 16) break;
    s.failed_sample.push_back(r);
  }
  const auto now = Clock::now();
  double open_window = std::chrono::duration<double>(now - rate_window_start_).count();
  if (now - last_copy_ >= std::chrono::duration<double>(kStaleRateSeconds)) {
    s.rate_bytes_per_s = 0;
  } else {
    s.rate_bytes_per_s = open_window < kStaleRateSeconds
                             ? recent_rate_
                             : static_cast<double>(rate_window_bytes_) / open_window;
  }
  const uint64_t valid = engine_.bitmap().valid_count();
  const uint64_t remaining = engine_.geometry().region_count() - valid;
  EngineStatus engine = engine_.status();
  if (s.complete) {
    s.state = HydrationState::kComplete;
  } else if (stopping_) {
    s.state = HydrationState::kIdle;
    s.state_reason = "stopped (the image is being unmounted)";
  } else if (engine.mode != MetadataMode::kReadWrite) {
    s.state = HydrationState::kIdle;
    s.state_reason =
        std::string("metadata is ") + to_string(engine.mode) + ": " + engine.mode_reason;
  } else if (settings_.paused) {
    s.state = HydrationState::kPaused;
  } else if (failed_.size() >= remaining) {
    s.state = HydrationState::kIdle;
    s.state_reason = "source unreachable: the " + std::to_string(remaining) +
                     " regions left could not be read from the source";
  } else {
    s.state = HydrationState::kRunning;
  }
  if (s.complete) {
    s.eta_seconds = 0;
  } else if (s.rate_bytes_per_s > 0 && s.state == HydrationState::kRunning) {
    s.eta_seconds =
        static_cast<double>(remaining * engine_.geometry().region_size()) / s.rate_bytes_per_s;
  }
  return s;
}

bool Hydrator::wait_complete(std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (!engine_.bitmap().all_valid()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace clonefs
