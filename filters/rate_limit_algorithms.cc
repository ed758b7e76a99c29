#include "filters/rate_limit_algorithms.h"

#include <algorithm>
#include <limits>

namespace flowguard::filters {

namespace {

// Window counters pack (window index, count) into one int64 so a single CAS updates both.
// The index is kept modulo 2^36 and compared by signed difference, so wrap-around only
// matters for a counter left untouched for exactly 2^36 windows (evicted long before).
constexpr int kCountBits = 28;
constexpr int kWindowBits = 64 - kCountBits;
constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
constexpr uint64_t kWindowMask = (uint64_t{1} << kWindowBits) - 1;
// Counts saturate here, so window limits above it behave as this limit.
constexpr uint64_t kMaxWindowCount = kCountMask;

struct Window {
  uint64_t index = 0;  // modulo 2^kWindowBits
  uint64_t count = 0;
};

int64_t pack(Window w) {
  return static_cast<int64_t>(((w.index & kWindowMask) << kCountBits) | (w.count & kCountMask));
}

Window unpack(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  return {u >> kCountBits, u & kCountMask};
}

// How many windows `a` is ahead of `b` (negative when behind), modulo 2^kWindowBits.
int64_t windowDiff(uint64_t a, uint64_t b) {
  uint64_t d = (a - b) & kWindowMask;
  if (d & (uint64_t{1} << (kWindowBits - 1)))
    return static_cast<int64_t>(d) - static_cast<int64_t>(kWindowMask) - 1;
  return static_cast<int64_t>(d);
}

uint64_t ceilDiv(uint64_t a, uint64_t b) {
  return a / b + (a % b != 0);
}

int64_t periodMs(const config::RateLimitSpec& spec) {
  return std::max<int64_t>(1, spec.period.count());
}

void touch(RateLimitCounter& counter, int64_t nowMs) {
  int64_t last = counter.lastUsedMs.load(std::memory_order_relaxed);
  while (last < nowMs && !counter.lastUsedMs.compare_exchange_weak(last, nowMs, std::memory_order_relaxed)) {
  }
}

// A limit of zero requests admits nothing (fail closed rather than unlimited).
RateLimitDecision denyAll(const config::RateLimitSpec& spec) {
  RateLimitDecision d;
  d.allowed = false;
  d.resetMs = d.retryAfterMs = static_cast<uint64_t>(periodMs(spec));
  return d;
}

// GCRA: the counter holds the theoretical arrival time (TAT) in microseconds. Each admitted
// request pushes TAT by the emission interval T; a request is admitted while TAT is at most
// `tau` (= (burst-1)*T) ahead of now. Microseconds keep T precise for rates like 3/s.
RateLimitDecision decideTokenBucket(RateLimitCounter& counter, const config::RateLimitSpec& spec,
                                    int64_t nowMs) {
  const uint64_t burst = spec.burst ? spec.burst : spec.requests;
  const int64_t periodUs = periodMs(spec) * 1000;
  const int64_t t = std::max<int64_t>(1, periodUs / static_cast<int64_t>(spec.requests));
  // Cap so tau cannot overflow; such a burst is "unlimited" for any realistic clock.
  const int64_t burstCapped =
      static_cast<int64_t>(std::min<uint64_t>(burst, std::numeric_limits<int64_t>::max() / 4 / t));
  const int64_t tau = (burstCapped - 1) * t;
  const int64_t now = nowMs * 1000;

  RateLimitDecision d;
  d.limit = burst;
  int64_t tat = counter.value.load(std::memory_order_acquire);
  for (;;) {
    if (now < tat - tau) {
      d.allowed = false;
      d.remaining = 0;
      d.retryAfterMs = std::max<uint64_t>(1, ceilDiv(static_cast<uint64_t>(tat - tau - now), 1000));
      d.resetMs = ceilDiv(static_cast<uint64_t>(tat - now), 1000);
      return d;
    }
    const int64_t newTat = std::max(tat, now) + t;
    if (counter.value.compare_exchange_weak(tat, newTat, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      d.allowed = true;
      // Further requests admitted right now: k such that newTat + (k-1)*T - tau <= now.
      const int64_t slack = now + tau - newTat;
      d.remaining = slack < 0 ? 0 : static_cast<uint64_t>(slack / t + 1);
      d.resetMs = ceilDiv(static_cast<uint64_t>(newTat - now), 1000);
      return d;
    }
  }
}

struct WindowClock {
  uint64_t index;     // absolute window index of now
  int64_t elapsedMs;  // since the window start (0..period-1)
};

// Moves the counter into window `w` if it is still in an older one. With `keepPrevious`,
// first records in `previous` the closing count of window w-1, tagged with the window it
// is the predecessor of (w; so the all-zero initial state reads "window 0 follows an empty
// one"). `previous` only grows (by tag, then count), and it is published before `value`
// moves, so a reader that sees the counter in window w also sees the final count of w-1.
// A failed CAS on `value` means a request was still counted in the old window: the loop
// then publishes the larger count. Returns the counter's value once it is in window w or
// a later one.
int64_t rollTo(RateLimitCounter& counter, uint64_t w, bool keepPrevious) {
  int64_t v = counter.value.load(std::memory_order_acquire);
  for (;;) {
    Window cur = unpack(v);
    if (windowDiff(cur.index, w) >= 0) return v;
    if (keepPrevious) {
      const Window closing{w, windowDiff(cur.index, w - 1) == 0 ? cur.count : 0};
      int64_t prev = counter.previous.load(std::memory_order_acquire);
      for (;;) {
        Window p = unpack(prev);
        const int64_t dw = windowDiff(p.index, closing.index);
        if (dw > 0 || (dw == 0 && p.count >= closing.count)) break;
        if (counter.previous.compare_exchange_weak(prev, pack(closing), std::memory_order_acq_rel,
                                                   std::memory_order_acquire)) {
          break;
        }
      }
    }
    if (counter.value.compare_exchange_weak(v, pack({w, 0}), std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      return pack({w, 0});
    }
  }
}

// Windows are aligned to multiples of the period since clock 0. The counter may already be
// in a later window than the caller's clock says, when another worker read a later clock;
// the request then counts in that later window (the caller's view is merely stale).
WindowClock windowOf(int64_t nowMs, int64_t period) {
  const int64_t now = std::max<int64_t>(0, nowMs);
  return {static_cast<uint64_t>(now / period), now % period};
}

RateLimitDecision decideFixedWindow(RateLimitCounter& counter, const config::RateLimitSpec& spec,
                                    int64_t nowMs) {
  const int64_t period = periodMs(spec);
  const uint64_t limit = std::min(spec.requests, kMaxWindowCount);
  const WindowClock clock = windowOf(nowMs, period);

  RateLimitDecision d;
  d.limit = spec.requests;
  int64_t v = rollTo(counter, clock.index, false);
  for (;;) {
    Window cur = unpack(v);
    const uint64_t absIndex = clock.index + static_cast<uint64_t>(windowDiff(cur.index, clock.index));
    const uint64_t untilEnd =
        (absIndex + 1) * static_cast<uint64_t>(period) - static_cast<uint64_t>(std::max<int64_t>(0, nowMs));
    d.resetMs = untilEnd;
    if (cur.count >= limit) {
      d.allowed = false;
      d.remaining = 0;
      d.retryAfterMs = std::max<uint64_t>(1, untilEnd);
      return d;
    }
    if (counter.value.compare_exchange_weak(v, pack({cur.index, cur.count + 1}), std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      d.allowed = true;
      d.remaining = limit - cur.count - 1;
      return d;
    }
  }
}

// Cloudflare-style approximation: the previous window's count weighted by the share of it
// still inside the sliding period, plus the current count. All in integers scaled by the
// period: prev*(P-e) + cur*P < limit*P.
RateLimitDecision decideSlidingWindow(RateLimitCounter& counter, const config::RateLimitSpec& spec,
                                      int64_t nowMs) {
  // Capped at ~200 days so count*period products stay within 64 bits.
  const uint64_t period = std::min<uint64_t>(static_cast<uint64_t>(periodMs(spec)), uint64_t{1} << 34);
  const uint64_t limit = std::min(spec.requests, kMaxWindowCount);
  const WindowClock clock = windowOf(nowMs, static_cast<int64_t>(period));

  RateLimitDecision d;
  d.limit = spec.requests;
  int64_t v = rollTo(counter, clock.index, true);
  for (;;) {
    Window cur = unpack(v);
    const int64_t ahead = windowDiff(cur.index, clock.index);
    // A counter ahead of our clock: we are before its window start, so the previous
    // window still weighs fully.
    const uint64_t elapsed = ahead > 0 ? 0 : static_cast<uint64_t>(clock.elapsedMs);
    const uint64_t untilEnd =
        static_cast<uint64_t>(ahead) * period + (period - static_cast<uint64_t>(clock.elapsedMs));

    Window prev = unpack(counter.previous.load(std::memory_order_acquire));
    const int64_t prevDiff = windowDiff(prev.index, cur.index);
    if (prevDiff > 0) {
      // Another worker is moving the counter to a later window (it published `previous`
      // but not yet `value`): help it finish instead of waiting for it.
      v = rollTo(counter, prev.index, true);
      continue;
    }
    const uint64_t prevCount = prevDiff == 0 ? prev.count : 0;
    const uint64_t weighted = prevCount * (period - elapsed);  // scaled by period

    const bool allowed = cur.count < limit && weighted + cur.count * period < limit * period;
    if (!allowed) {
      d.allowed = false;
      d.remaining = 0;
      // Time from now to the start of the counter's window (negative: it has started).
      const int64_t toStart = static_cast<int64_t>(untilEnd) - static_cast<int64_t>(period);
      int64_t wait;
      if (cur.count < limit) {
        // Within this window: smallest e with prevCount*(P-e) < (limit-cur)*P. prevCount > 0
        // here, as otherwise the request would have been admitted.
        const uint64_t room = (limit - cur.count) * period;
        wait = toStart + static_cast<int64_t>(period - (room - 1) / prevCount);
      } else {
        // Next window: this window's count becomes the weighted one, with nothing new yet.
        wait = toStart + static_cast<int64_t>(period) +
               static_cast<int64_t>(period - (limit * period - 1) / cur.count);
      }
      d.retryAfterMs = static_cast<uint64_t>(std::max<int64_t>(1, wait));
      d.resetMs = untilEnd + (cur.count > 0 ? period : 0);
      return d;
    }
    if (counter.value.compare_exchange_weak(v, pack({cur.index, cur.count + 1}), std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      d.allowed = true;
      // Further admissions right now: the n with weighted + (cur+1+n)*P < limit*P.
      const uint64_t used = weighted / period + cur.count + 1;
      d.remaining = used >= limit ? 0 : limit - used;
      d.resetMs = untilEnd + period;  // this request weighs until the end of the next window
      return d;
    }
  }
}

}  // namespace

RateLimitDecision decide(RateLimitCounter& counter, const config::RateLimitSpec& spec, int64_t nowMs) {
  touch(counter, nowMs);
  if (spec.requests == 0) return denyAll(spec);
  switch (spec.algorithm) {
    case config::RateLimitAlgorithm::FixedWindow:
      return decideFixedWindow(counter, spec, nowMs);
    case config::RateLimitAlgorithm::SlidingWindow:
      return decideSlidingWindow(counter, spec, nowMs);
    case config::RateLimitAlgorithm::TokenBucket:
      break;
  }
  return decideTokenBucket(counter, spec, nowMs);
}

}  // namespace flowguard::filters
