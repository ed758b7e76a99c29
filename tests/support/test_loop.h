// A libuv loop for tests that drive async code (Redis limiter, store client) by hand.
#pragma once

#include <uv.h>

#include <chrono>
#include <thread>

#include "tests/support/test_support.h"

namespace flowguard::test {

// A uv loop with a ticking timer, so UV_RUN_ONCE wakes up often enough to re-check a
// condition even when nothing else happens.
class TestLoop {
 public:
  TestLoop() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
  }
  ~TestLoop() {
    if (!finished_) finish();
  }
  uv_loop_t* get() { return &loop_; }

  template <typename Condition>
  bool runUntil(Condition condition, Millis timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }
  void runFor(Millis duration) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    runUntil([&] { return std::chrono::steady_clock::now() >= deadline; }, duration + 1s);
  }
  // Closes the tick timer and lets pending close callbacks run; returns uv_loop_close's
  // result, which is UV_EBUSY when some handle (a leaked socket or timer) is still open.
  int finish() {
    finished_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (uv_loop_alive(&loop_) && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(1ms);
    }
    return uv_loop_close(&loop_);
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
  bool finished_ = false;
};

}  // namespace flowguard::test
