// The hydrator's time: what it reads as "now" and how it waits for a deadline. Production uses
// the steady clock; tests use a manual clock they step themselves (tests/support/manual_clock.h),
// so rate windows, the rate limit, backoffs and the user-I/O grace period run without sleeping
// and without depending on how fast the machine is.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace clonefs {

class HydrationClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~HydrationClock() = default;
  virtual time_point now() const = 0;
  // Waits on `cv` (its mutex held by `lock`) until notified or until now() reaches `deadline`.
  // May return early: callers check their condition again.
  virtual void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          time_point deadline) = 0;
  // `wake` is called (without any lock of the clock's held) each time the clock moves by other
  // means than passing: a manual clock calls it from advance(), so waiters see their deadlines.
  // The steady clock never calls it.
  virtual void on_advance(std::function<void()> wake) = 0;
  virtual void clear_on_advance() = 0;
};

// std::chrono::steady_clock.
class SteadyHydrationClock final : public HydrationClock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  time_point deadline) override {
    cv.wait_until(lock, deadline);
  }
  void on_advance(std::function<void()>) override {}
  void clear_on_advance() override {}
};

// The process's steady clock, shared by every hydrator that is not given another.
HydrationClock& steady_hydration_clock();

}  // namespace clonefs
