// UvHandle: the one owner of a heap-allocated libuv handle. Closing frees the memory in the
// close callback (the loop must run for it), nothing fires after reset(), moves hand the
// handle over, and a failed init leaves no handle. Leaks show under the ASan build's
// LeakSanitizer; a handle left open makes uv_loop_close fail here.
#include <doctest/doctest.h>

#include <utility>

#include "core/uv_handle.h"

using flowguard::core::UvHandle;

namespace {

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);  // every handle was closed and its close callback ran
  }
};

struct Counter {
  int fired = 0;
};

void onTimer(uv_timer_t* timer) {
  ++static_cast<Counter*>(timer->data)->fired;
}

}  // namespace

TEST_CASE("UvHandle: init sets data; reset closes, and nothing fires afterwards") {
  Loop l;
  Counter counter;
  UvHandle<uv_timer_t> timer(&l.loop, &counter, uv_timer_init);
  REQUIRE(timer);
  CHECK(timer.error() == 0);
  CHECK(timer->data == &counter);
  uv_timer_start(timer.get(), onTimer, 0, 0);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(counter.fired == 1);

  uv_timer_start(timer.get(), onTimer, 0, 0);
  timer.reset();
  CHECK_FALSE(timer);
  timer.reset();  // idempotent
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(counter.fired == 1);  // the pending expiry went with the handle
}

TEST_CASE("UvHandle: moves hand the handle over; assignment closes what was there") {
  Loop l;
  Counter a, b;
  UvHandle<uv_timer_t> first(&l.loop, &a, uv_timer_init);
  uv_timer_t* raw = first.get();
  UvHandle<uv_timer_t> second(std::move(first));
  CHECK_FALSE(first);
  CHECK(second.get() == raw);

  UvHandle<uv_timer_t> third(&l.loop, &b, uv_timer_init);
  uv_timer_start(third.get(), onTimer, 0, 0);
  third = std::move(second);  // the old third is closed: its timer never fires
  CHECK(third.get() == raw);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(b.fired == 0);
  third.reset();
}

TEST_CASE("UvHandle: a failed init leaves no handle and says why") {
  Loop l;
  UvHandle<uv_tcp_t> tcp(&l.loop, nullptr, uv_tcp_init_ex, 0xffffu);  // flags libuv refuses
  CHECK_FALSE(tcp);
  CHECK(tcp.error() == UV_EINVAL);
  tcp.reset();  // nothing to close
}

TEST_CASE("UvHandle: going out of scope closes it") {
  Loop l;
  Counter counter;
  {
    UvHandle<uv_timer_t> timer(&l.loop, &counter, uv_timer_init);
    uv_timer_start(timer.get(), onTimer, 0, 0);
  }
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(counter.fired == 0);
}
