#include <doctest/doctest.h>

#include <memory>

#include "core/connection_limits.h"

using namespace flowguard::core;

TEST_CASE("admission: listener and process limits, counted per reason, released with the slot") {
  auto listener = std::make_shared<ConnectionLimit>(2);
  auto process = std::make_shared<OverloadState>();
  process->connections.setMax(3);
  ConnectionSlot a, b, c;
  CHECK(admitConnection(listener, process, a));
  CHECK(admitConnection(listener, process, b));
  RejectReason why{};
  CHECK_FALSE(admitConnection(listener, process, c, &why));
  CHECK(why == RejectReason::ListenerLimit);
  CHECK(listener->active() == 2);
  CHECK(process->connections.active() == 2);  // the process slot was given back
  CHECK(listener->rejected(RejectReason::ListenerLimit) == 1);
  CHECK(process->connections.rejected(RejectReason::ListenerLimit) == 1);

  auto other = std::make_shared<ConnectionLimit>();  // unlimited listener
  ConnectionSlot d, e;
  CHECK(admitConnection(other, process, d));
  CHECK_FALSE(admitConnection(other, process, e, &why));
  CHECK(why == RejectReason::ProcessLimit);
  CHECK(other->rejected(RejectReason::ProcessLimit) == 1);
  CHECK(other->active() == 1);

  a.reset();
  CHECK(listener->active() == 1);
  CHECK(process->connections.active() == 2);
  {
    ConnectionSlot moved = std::move(b);  // the slot moves; it is released once
    CHECK(listener->active() == 1);
  }
  CHECK(listener->active() == 0);
  CHECK(process->connections.active() == 1);

  process->overloaded = true;
  CHECK_FALSE(admitConnection(other, process, e, &why));
  CHECK(why == RejectReason::Overloaded);
  CHECK(other->rejected(RejectReason::Overloaded) == 1);
  CHECK(process->connections.rejectedTotal() == 3);
  CHECK(other->accepted() == 1);
}

TEST_CASE("admission: a limit of 0 is no limit; lowering it closes nothing") {
  ConnectionLimit limit;
  for (int i = 0; i < 1000; ++i) CHECK(limit.tryAcquire());
  limit.setMax(10);
  CHECK(limit.active() == 1000);
  CHECK_FALSE(limit.tryAcquire());
}

TEST_CASE("overload flag: on above the limit, off only below 90% of it") {
  const uint64_t limit = 1000;
  CHECK_FALSE(nextOverloaded(false, 1000, limit));
  CHECK(nextOverloaded(false, 1001, limit));
  CHECK(nextOverloaded(true, 950, limit));
  CHECK(nextOverloaded(true, 900, limit));
  CHECK_FALSE(nextOverloaded(true, 899, limit));
  CHECK_FALSE(nextOverloaded(true, 5000, 0));  // limit off clears the flag
  CHECK(currentRssBytes() > 0);
}

TEST_CASE("heap release: after RSS grew a step, at most every interval, and before overload") {
  const uint64_t base = 100ull << 20;
  const uint64_t later = kHeapReleaseIntervalMs;
  // Steady: nothing to give back.
  CHECK_FALSE(shouldReleaseHeap(base, base, later, false, 0));
  CHECK_FALSE(shouldReleaseHeap(base + kHeapReleaseStep, base, later, false, 0));
  // Grown past the step: released, but not again within the interval.
  CHECK(shouldReleaseHeap(base + kHeapReleaseStep + 1, base, later, false, 0));
  CHECK_FALSE(shouldReleaseHeap(base + kHeapReleaseStep + 1, base, later - 1, false, 0));
  // Shrinking needs nothing.
  CHECK_FALSE(shouldReleaseHeap(base / 2, base, later, false, 0));
  // About to be declared overloaded: released first, whenever that is.
  const uint64_t limit = base;
  CHECK(shouldReleaseHeap(base + 1, base, 0, false, limit));
  CHECK_FALSE(shouldReleaseHeap(base, base, 0, false, limit));
  // While overloaded: once per interval, grown or not.
  CHECK(shouldReleaseHeap(base + 1, base + 1, later, true, limit));
  CHECK_FALSE(shouldReleaseHeap(base + 1, base + 1, later - 1, true, limit));
}
