// A uv timer used as a moving deadline. Connections re-arm their timeouts on every
// request and every read; doing that with uv_timer_start/stop costs a timer-heap update
// each time. Here set() and clear() only store a number: the uv timer wakes at the
// earliest deadline it was armed for and, if the deadline moved later meanwhile, sleeps
// again for the rest. (Envoy and nginx use the same trick for idle timers.)
//
// Embedded in its owner, which closes it with close() like any other handle it owns.
#pragma once

#include <cstdint>

#include <uv.h>

namespace flowguard::core {

class DeadlineTimer {
 public:
  using Callback = void (*)(void* owner);

  // `onExpired(owner)` runs when a deadline passes.
  void init(uv_loop_t* loop, void* owner, Callback onExpired);
  // Deadline = loop time + milliseconds (replaces any earlier one). 0 ms expires on the
  // next loop iteration.
  void set(uint64_t milliseconds);
  // No deadline; the uv timer may still wake once and find nothing to do.
  void clear() { deadline_ = 0; }
  bool armed() const { return deadline_ != 0; }
  // Closes the handle; `onClosed(owner)` runs from libuv's close callback.
  void close(Callback onClosed);

 private:
  static void onFire(uv_timer_t* timer);

  uv_timer_t timer_;
  void* owner_ = nullptr;
  Callback onExpired_ = nullptr;
  Callback onClosed_ = nullptr;
  uint64_t deadline_ = 0;  // loop time in ms; 0 = none
  uint64_t wakeAt_ = 0;    // when the uv timer fires; 0 = not running
};

}  // namespace flowguard::core
