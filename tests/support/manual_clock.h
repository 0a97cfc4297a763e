// A hydrator clock that moves only when a test says so: deadlines pass at advance(), never by
// themselves, so tests of rate windows, the rate limit and backoff neither sleep nor depend on
// the machine's speed.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>

#include "engine/hydration_clock.h"

namespace clonefs::testing {

class ManualClock final : public HydrationClock {
 public:
  // Far from the epoch, so "the last user I/O" (none: the epoch) is long ago.
  ManualClock() : now_(std::chrono::duration_cast<duration>(std::chrono::hours(1)).count()) {}

  time_point now() const override { return time_point(duration(now_.load())); }
  // Waits for a notification only: advance() notifies through the waker, which takes the
  // waiter's mutex, so a deadline passing between the caller's check and the wait is not missed.
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  time_point deadline) override {
    if (now() < deadline) cv.wait(lock);
  }
  void on_advance(std::function<void()> wake) override {
    std::lock_guard lock(mu_);
    wake_ = std::move(wake);
  }
  void clear_on_advance() override {
    std::lock_guard lock(mu_);
    wake_ = nullptr;
  }

  void advance(duration by) {
    now_.fetch_add(by.count());
    std::lock_guard lock(mu_);
    if (wake_) wake_();
  }

 private:
  std::atomic<duration::rep> now_;
  std::mutex mu_;  // guards wake_; held while calling it, so clear_on_advance() waits it out
  std::function<void()> wake_;
};

}  // namespace clonefs::testing
