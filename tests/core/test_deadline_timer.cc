// DeadlineTimer on a real libuv loop. Only lower bounds on time are checked (libuv never
// fires a timer early); orderings use a second timer, not the wall clock.
#include "core/deadline_timer.h"

#include <doctest/doctest.h>

#include <vector>

using flowguard::core::DeadlineTimer;

namespace {

struct Fixture {
  uv_loop_t loop;
  DeadlineTimer timer;
  std::vector<uint64_t> firedAt;  // loop times of expiries
  uint64_t start = 0;

  Fixture() {
    uv_loop_init(&loop);
    timer.init(&loop, this, [](void* self) {
      auto* f = static_cast<Fixture*>(self);
      f->firedAt.push_back(uv_now(&f->loop));
    });
    uv_update_time(&loop);
    start = uv_now(&loop);
  }
  ~Fixture() {
    timer.close([](void*) {});
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  // Runs `fn` once, `ms` after start, from a plain uv timer.
  void at(uint64_t ms, void (*fn)(Fixture&)) {
    auto* t = new uv_timer_t;
    uv_timer_init(&loop, t);
    struct Ctx {
      Fixture* f;
      void (*fn)(Fixture&);
    };
    t->data = new Ctx{this, fn};
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          auto* ctx = static_cast<Ctx*>(h->data);
          ctx->fn(*ctx->f);
          delete ctx;
          uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
        },
        ms, 0);
  }
};

}  // namespace

TEST_CASE("a deadline expires once, not before its time") {
  Fixture f;
  f.timer.set(30);
  CHECK(f.timer.armed());
  uv_run(&f.loop, UV_RUN_DEFAULT);
  REQUIRE(f.firedAt.size() == 1);
  CHECK(f.firedAt[0] >= f.start + 30);
  CHECK_FALSE(f.timer.armed());
}

TEST_CASE("a cleared deadline never expires") {
  Fixture f;
  f.timer.set(20);
  f.timer.clear();
  uv_run(&f.loop, UV_RUN_DEFAULT);  // the uv timer still wakes once, finds nothing
  CHECK(f.firedAt.empty());
}

TEST_CASE("moving a deadline later defers the expiry without a second expiry") {
  Fixture f;
  f.timer.set(20);
  f.at(10, [](Fixture& fx) { fx.timer.set(50); });  // new deadline: 10 + 50 after start
  uv_run(&f.loop, UV_RUN_DEFAULT);
  REQUIRE(f.firedAt.size() == 1);
  CHECK(f.firedAt[0] >= f.start + 60);
}

TEST_CASE("moving a deadline earlier expires at the earlier time") {
  Fixture f;
  f.timer.set(5000);
  f.timer.set(10);
  bool sentinelSawExpiry = false;
  static bool* seen = nullptr;
  seen = &sentinelSawExpiry;
  f.at(1000, [](Fixture& fx) {
    *seen = !fx.firedAt.empty();
    fx.timer.clear();
  });
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK(sentinelSawExpiry);  // expired long before the 1 s sentinel, not at 5 s
  REQUIRE(f.firedAt.size() == 1);
  CHECK(f.firedAt[0] >= f.start + 10);
}

TEST_CASE("a deadline can be set again after it expired") {
  Fixture f;
  f.timer.set(5);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  f.timer.set(5);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK(f.firedAt.size() == 2);
}
