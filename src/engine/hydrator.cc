#include "engine/hydrator.h"

#include <algorithm>
#include <system_error>

namespace clonefs {
namespace {

using TimePoint = HydrationClock::time_point;

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
// See wait_complete().
constexpr auto kCompleteRecheck = std::chrono::milliseconds(100);
// How often a worker looks again at a source that was unreachable.
constexpr auto kUnreachableRecheck = std::chrono::milliseconds(200);

// Counts the remote source's reconnections: it moves when the source came back from an outage.
uint64_t source_epoch(const SourceDevice& source) {
  auto link = source.connection();
  return link ? link->reconnects : 0;
}

// Why hydration waits for an unreachable source: a server refused as another source says so.
std::string unreachable_reason(const SourceDevice& source) {
  auto link = source.connection();
  if (link && link->state == "changed") {
    return link->last_error + " (hydration waits for the original source to come back)";
  }
  return "source unreachable: waiting for it to come back (see source_connection)";
}

HydrationSettings clamped(HydrationSettings settings) {
  settings.threshold = std::clamp<uint64_t>(settings.threshold, 1, kMaxHydrationThreshold);
  settings.batch = std::clamp<uint64_t>(settings.batch, 1, kMaxHydrationBatch);
  return settings;
}

}  // namespace

HydrationClock& steady_hydration_clock() {
  static SteadyHydrationClock clock;
  return clock;
}

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
                   unsigned max_retries, HydrationClock& clock)
    : engine_(engine),
      max_workers_(std::max(1u, max_workers)),
      max_retries_(max_retries),
      clock_(clock),
      settings_(clamped(settings)) {
  clock_.on_advance([this] {
    std::lock_guard lock(mu_);
    wake_all_locked();
  });
  engine_.add_observer(this);
  std::lock_guard lock(mu_);
  update_write_through_locked();
  rate_window_start_ = budget_start_ = clock_.now();
  add_workers();
}

Hydrator::~Hydrator() { stop(); }

// Once: after a first stop() the engine may be gone (the destructor's stop() comes after it).
void Hydrator::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    update_write_through_locked();
    cancel_.store(true, std::memory_order_relaxed);
    wake_all_locked();
    settled_.notify_all();
  }
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  engine_.remove_observer(this);
  clock_.clear_on_advance();
}

void Hydrator::sleep_locked(std::unique_lock<std::mutex>& lock,
                            std::optional<HydrationClock::time_point> deadline) {
  // A sleeper woken by wake_all_locked() was already uncounted there: counting it down again
  // would let settle() see every worker asleep while one is about to run.
  const uint64_t generation = wake_generation_;
  ++asleep_;
  settled_.notify_all();
  if (deadline) {
    clock_.wait_until(changed_, lock, *deadline);
  } else {
    changed_.wait(lock);
  }
  if (wake_generation_ == generation) --asleep_;
}

void Hydrator::wake_all_locked() {
  ++wake_generation_;
  asleep_ = 0;
  changed_.notify_all();
}

uint64_t Hydrator::wakeups() const {
  std::lock_guard lock(mu_);
  return wake_generation_;
}

void Hydrator::user_io() noexcept {
  last_user_io_.store(clock_.now().time_since_epoch().count(), std::memory_order_relaxed);
}

// A read waits on these regions now: queue them first (but those it writes through itself:
// copying them too would read them twice and make the read wait for the copy), and the regions
// after it, so the rest of what it reads (a file read in pieces) is copied while it waits for
// the source. The readahead starts at kFirstReadaheadReads reads' worth and doubles while the
// reads look sequential (this one starts inside what was queued for the last one). None while
// paused: by the resume the stream has moved on, and a guess would go before the plan (a mount
// of a filesystem over the image reads its metadata and journal before `hydrate --files`).
void Hydrator::read_fell_through(uint64_t first, uint64_t count, RegionRun through) noexcept {
  std::lock_guard lock(mu_);
  if (stopping_ || !on_demand_ || count == 0) return;
  const uint64_t regions = engine_.geometry().region_count();
  const uint64_t max_readahead =
      std::max<uint64_t>(1, kMaxReadaheadBytes / engine_.geometry().region_size());
  const bool sequential = first >= stream_first_ && first <= stream_end_;
  readahead_ = settings_.paused
                   ? 0
                   : std::min(sequential ? std::max(2 * readahead_, kFirstReadaheadReads * count)
                                         : kFirstReadaheadReads * count,
                              max_readahead);
  const uint64_t end = std::min(regions, first + count + readahead_);
  stream_first_ = first;
  stream_end_ = end;
  const uint64_t through_end = through.first + through.count;
  if (through.count == 0 || through.first < first || through_end > first + count) {
    priority_.push_front({first, end - first});
  } else {
    if (end > through_end) priority_.push_front({through_end, end - through_end});
    if (through.first > first) priority_.push_front({first, through.first - first});
  }
  while (priority_.size() > kMaxPriorityRuns) priority_.pop_back();
  // Paused, the workers have nothing to do with it until set_paused() wakes them. Waking them all
  // for every read (each 128 KiB request of a sequential reader) cost a 768 MiB read through a
  // fresh clone 55,000 context switches and twice the serving process's CPU time, against 7,000
  // without (as many as the passthrough FUSE file's).
  if (!settings_.paused) wake_all_locked();
}

void Hydrator::set_on_demand(bool on) {
  std::lock_guard lock(mu_);
  on_demand_ = on;
  if (!on) priority_.clear();
  update_write_through_locked();
}

void Hydrator::set_paused(bool paused) {
  std::lock_guard lock(mu_);
  settings_.paused = paused;
  update_write_through_locked();
  wake_all_locked();
}

// Write-through saves hydration a second read of what reads fetched: worth a write on the read
// path only while hydration runs, and it belongs with on-demand priority (--no-priority is
// hydration as before issue 13).
void Hydrator::update_write_through_locked() {
  engine_.set_write_through(on_demand_ && !settings_.paused && !stopping_);
}

void Hydrator::set_threshold(uint64_t regions) {
  std::lock_guard lock(mu_);
  settings_.threshold = std::clamp<uint64_t>(regions, 1, kMaxHydrationThreshold);
  add_workers();
  wake_all_locked();
}

void Hydrator::set_batch(uint64_t regions) {
  std::lock_guard lock(mu_);
  settings_.batch = std::clamp<uint64_t>(regions, 1, kMaxHydrationBatch);
  add_workers();
  wake_all_locked();
}

void Hydrator::set_plan(std::vector<RegionRun> runs) {
  {
    std::lock_guard lock(mu_);
    plan_.clear();
    plan_runs_.clear();
  }
  append_plan(std::move(runs));
}

void Hydrator::append_plan(std::vector<RegionRun> runs) {
  const uint64_t regions = engine_.geometry().region_count();
  std::erase_if(runs, [&](RegionRun& run) {
    run.count = run.first < regions ? std::min(run.count, regions - run.first) : 0;
    return run.count == 0;
  });
  std::lock_guard lock(mu_);
  plan_.insert(plan_.end(), runs.begin(), runs.end());
  plan_runs_.insert(plan_runs_.end(), runs.begin(), runs.end());
  wake_all_locked();
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
  budget_start_ = clock_.now();
  budget_used_ = 0;
  wake_all_locked();
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

uint64_t Hydrator::claimable_from(uint64_t start) const {
  const RegionBitmap& bitmap = engine_.bitmap();
  uint64_t n = 0;
  // A reflink step takes more regions than the batch asks (CloneEngine::step_regions).
  const uint64_t limit = engine_.step_regions(settings_.batch);
  while (n < limit && start + n < engine_.geometry().region_count() && !bitmap.test(start + n) &&
         !is_failed(start + n)) {
    ++n;
  }
  return n;
}

std::optional<Hydrator::Claim> Hydrator::claim_from_runs(std::deque<RegionRun>& runs) {
  while (!runs.empty()) {
    RegionRun& run = runs.front();
    while (run.count > 0) {
      const uint64_t n = std::min(run.count, claimable_from(run.first));
      const Claim claim{run.first, n, false};
      const uint64_t skip = std::max<uint64_t>(n, 1);  // a valid or failed region: past it
      run.first += skip;
      run.count -= skip;
      if (n > 0) {
        if (run.count == 0) runs.pop_front();
        return claim;
      }
    }
    runs.pop_front();
  }
  return std::nullopt;
}

std::optional<Hydrator::Claim> Hydrator::next_claim(bool in_order) {
  if (auto claim = claim_from_runs(priority_)) return claim;
  if (auto claim = claim_from_runs(plan_)) return claim;
  if (!in_order) return std::nullopt;
  auto start = next_start();
  if (!start) return std::nullopt;
  // Up to the next valid region: the step would stop there, and the cursor must not skip the
  // invalid regions after it until it comes round.
  return Claim{*start, std::max<uint64_t>(1, claimable_from(*start)), true};
}

void Hydrator::worker_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // Metadata that left read-write mode does not come back before the next mount: nothing to
    // wait for but stop().
    if (settings_.paused || active_copies_ >= copies_allowed() ||
        engine_.status().mode != MetadataMode::kReadWrite) {
      sleep_locked(lock);
      continue;
    }
    // An unreachable source (a remote one, reconnecting) is waited for, not failed region by
    // region: hydration resumes by itself once it is back. Nothing signals its return, so it
    // is looked at again after a while.
    if (!engine_.source().reachable()) {
      sleep_locked(lock, clock_.now() + kUnreachableRecheck);
      continue;
    }
    if (!failed_.empty() && source_epoch(engine_.source()) != failed_epoch_) failed_.clear();
    const TimePoint now = clock_.now();
    const TimePoint last_user{
        HydrationClock::duration(last_user_io_.load(std::memory_order_relaxed))};
    // Address order yields to user I/O: the trickle is shared, one batch at a time and one per
    // interval, however many workers. Regions reads wait on and the plan do not: they are the
    // user's own (still within the threshold and the rate limit).
    const bool trickle = now - last_user < kUserQuiet &&
                         (active_copies_ > 0 || now - last_start_ < kTrickleInterval);
    auto claim = next_claim(!trickle);
    if (!claim && trickle) {
      // Until the user has been quiet long enough, or (no batch in flight) the trickle is due; a
      // batch ending or a region asked for wakes it too.
      TimePoint wake = last_user + kUserQuiet;
      if (active_copies_ == 0) wake = std::min(wake, last_start_ + kTrickleInterval);
      sleep_locked(lock, wake);
      continue;
    }
    if (!claim) {  // complete, or only failed regions left: regions never turn invalid again
      // Failed regions are tried again once a remote source has reconnected (see failed_epoch_),
      // which nothing signals: looked at now and then.
      if (failed_.empty()) {
        sleep_locked(lock);
      } else {
        sleep_locked(lock, clock_.now() + kUnreachableRecheck);
      }
      continue;
    }
    const uint64_t start = claim->start;
    // A batch stops before the next failed region, so one bad region does not sink its batch.
    uint64_t batch = claim->batch;
    if (auto next_failed = failed_.lower_bound(start); next_failed != failed_.end()) {
      batch = std::min(batch, *next_failed - start);
    }
    if (claim->in_order) cursor_ = start + batch;
    last_start_ = now;
    ++active_copies_;
    lock.unlock();
    const uint64_t epoch = source_epoch(engine_.source());
    std::vector<uint64_t> newly_failed;
    BatchResult result;
    bool threw = false;
    // Nothing may escape a worker thread (std::terminate would end the daemon). A copy that
    // throws, std::bad_alloc above all, is a failed batch: its regions stay invalid, not
    // failed, and are tried again when the cursor comes round.
    try {
      result = copy_batch(start, batch, newly_failed);
    } catch (...) {
      threw = true;
      newly_failed.clear();
    }
    lock.lock();
    --active_copies_;
    if (threw) {
      wake_all_locked();
      const TimePoint until = clock_.now() + kExceptionBackoff;
      while (!stopping_ && clock_.now() < until) sleep_locked(lock, until);
      continue;
    }
    if (!newly_failed.empty()) {
      failed_epoch_ = failed_.empty() ? epoch : std::min(failed_epoch_, epoch);
      failed_.insert(newly_failed.begin(), newly_failed.end());
    }
    record_copy(result.hydrated * engine_.geometry().region_size());
    throttle(result.copied_bytes, lock);
    wake_all_locked();
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
  if (engine_.status().mode != MetadataMode::kReadWrite || !engine_.source().reachable()) {
    return result;  // the worker loop waits
  }
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
    if (!engine_.source().reachable()) return result;  // lost mid-retry: not the region's fault
    if (!done && !engine_.bitmap().test(r)) newly_failed.push_back(r);
  }
  return result;
}

bool Hydrator::backoff(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  const TimePoint until = clock_.now() + delay;
  while (!stopping_ && clock_.now() < until) sleep_locked(lock, until);
  return !stopping_;
}

void Hydrator::record_copy(uint64_t bytes) {
  const TimePoint now = clock_.now();
  if (bytes > 0) last_copy_ = now;
  rate_window_bytes_ += bytes;
  double seconds = std::chrono::duration<double>(now - rate_window_start_).count();
  if (seconds >= 1.0) {
    recent_rate_ = static_cast<double>(rate_window_bytes_) / seconds;
    rate_window_start_ = now;
    rate_window_bytes_ = 0;
  }
}

// Token bucket over the bytes actually copied: sleeps until the budget allows them.
void Hydrator::throttle(uint64_t bytes, std::unique_lock<std::mutex>& lock) {
  if (settings_.rate == 0) return;
  auto now = clock_.now();
  if (now - budget_start_ > std::chrono::seconds(2)) {  // forget old slack so bursts stay small
    budget_start_ = now;
    budget_used_ = 0;
  }
  budget_used_ += bytes;
  double allowed_at = static_cast<double>(budget_used_) / static_cast<double>(settings_.rate);
  auto wake = budget_start_ + std::chrono::duration_cast<HydrationClock::duration>(
                                  std::chrono::duration<double>(allowed_at));
  uint64_t rate = settings_.rate;
  while (!stopping_ && settings_.rate == rate && clock_.now() < wake) sleep_locked(lock, wake);
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
  const auto now = clock_.now();
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
  } else if (!engine_.source().reachable()) {
    s.state = HydrationState::kIdle;
    s.state_reason = unreachable_reason(engine_.source());
  } else if (failed_.size() >= remaining) {
    s.state = HydrationState::kIdle;
    s.state_reason = "source unreachable: the " + std::to_string(remaining) +
                     " regions left could not be read from the source";
  } else {
    s.state = HydrationState::kRunning;
  }
  // Readahead windows of one stream overlap: each region is counted once.
  std::vector<RegionRun> queued(priority_.begin(), priority_.end());
  std::ranges::sort(queued, {}, &RegionRun::first);
  uint64_t counted_to = 0;
  for (const RegionRun& run : queued) {
    const uint64_t first = std::max(run.first, counted_to), end = run.first + run.count;
    if (first >= end) continue;
    s.priority_regions += (end - first) - engine_.bitmap().count_valid(first, end - first);
    counted_to = end;
  }
  for (const RegionRun& run : plan_runs_) {
    s.plan_regions += run.count;
    s.plan_regions_left += run.count - engine_.bitmap().count_valid(run.first, run.count);
  }
  if (s.complete) {
    s.eta_seconds = 0;
  } else if (s.rate_bytes_per_s > 0 && s.state == HydrationState::kRunning) {
    s.eta_seconds =
        static_cast<double>(remaining * engine_.geometry().region_size()) / s.rate_bytes_per_s;
  }
  return s;
}

// Every batch ends with wake_all_locked(), so the hydrator's last one wakes this. User writes
// and discards can make the last regions valid without a batch, and the engine tells no one of
// that, so the condition is also looked at again every kCompleteRecheck.
bool Hydrator::wait_complete(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (!engine_.bitmap().all_valid()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    changed_.wait_until(lock, std::min(deadline, now + kCompleteRecheck));
  }
  return true;
}

bool Hydrator::settle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return settled_.wait_for(lock, timeout, [&] { return stopping_ || asleep_ == workers_.size(); });
}

}  // namespace clonefs
