// HealthState fed probe results directly: no checker, no sockets, no clock.
#include "upstream/health_state.h"

#include <doctest/doctest.h>

#include <initializer_list>

using flowguard::upstream::HealthState;

TEST_CASE("HealthState starts with the initial verdict") {
  CHECK(HealthState(2, 3, true).healthy());
  CHECK_FALSE(HealthState(2, 3, false).healthy());
  HealthState s(2, 3, true);
  CHECK(s.successesInARow() == 0);
  CHECK(s.failuresInARow() == 0);
}

TEST_CASE("exactly unhealthyThreshold failures in a row take a healthy host out") {
  HealthState s(2, 3, true);
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(false));
  CHECK(s.failuresInARow() == 2);
  CHECK(s.healthy());  // threshold - 1 is not enough
  CHECK(s.record(false));
  CHECK_FALSE(s.healthy());
  // Further failures keep it down without reporting another flip.
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.healthy());
}

TEST_CASE("a success between failures resets the failure count") {
  HealthState s(2, 3, true);
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(true));
  CHECK(s.failuresInARow() == 0);
  CHECK_FALSE(s.record(false));
  CHECK_FALSE(s.record(false));
  CHECK(s.healthy());  // only 2 in a row since the success
  CHECK(s.record(false));
  CHECK_FALSE(s.healthy());
}

TEST_CASE("healthyThreshold successes in a row bring an unhealthy host back") {
  HealthState s(2, 3, false);
  CHECK_FALSE(s.record(true));
  CHECK_FALSE(s.healthy());
  CHECK(s.successesInARow() == 1);
  CHECK(s.record(true));
  CHECK(s.healthy());
  CHECK_FALSE(s.record(true));  // already healthy: no flip
  CHECK(s.healthy());
}

TEST_CASE("a failure between successes resets the success count") {
  HealthState s(3, 3, false);
  CHECK_FALSE(s.record(true));
  CHECK_FALSE(s.record(true));
  CHECK_FALSE(s.record(false));
  CHECK(s.successesInARow() == 0);
  CHECK_FALSE(s.record(true));
  CHECK_FALSE(s.record(true));
  CHECK_FALSE(s.healthy());
  CHECK(s.record(true));
  CHECK(s.healthy());
}

TEST_CASE("full cycle: down after the fall, up after the rise") {
  HealthState s(2, 2, true);
  CHECK_FALSE(s.record(false));
  CHECK(s.record(false));
  CHECK_FALSE(s.healthy());
  CHECK_FALSE(s.record(true));
  CHECK(s.record(true));
  CHECK(s.healthy());
  CHECK_FALSE(s.record(false));
  CHECK(s.record(false));
  CHECK_FALSE(s.healthy());
}

TEST_CASE("flapping input never flips when both thresholds are above one") {
  for (bool initial : {true, false}) {
    CAPTURE(initial);
    HealthState s(2, 2, initial);
    for (int i = 0; i < 100; ++i) {
      CHECK_FALSE(s.record(i % 2 == 0));
      CHECK(s.healthy() == initial);
    }
  }
}

TEST_CASE("threshold one flips at once, every time") {
  HealthState s(1, 1, true);
  CHECK(s.record(false));
  CHECK_FALSE(s.healthy());
  CHECK_FALSE(s.record(false));
  CHECK(s.record(true));
  CHECK(s.healthy());
  CHECK_FALSE(s.record(true));
  CHECK(s.record(false));
  CHECK_FALSE(s.healthy());
}
