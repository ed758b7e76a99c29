// The one status classifier: class boundaries, 429 counted in 4xx and on its own, and no class
// for 0 (no answer), 1xx or anything outside 100..599.
#include "core/status_class.h"

#include <doctest/doctest.h>

using flowguard::core::countStatus;
using flowguard::core::StatusClass;
using flowguard::core::statusClass;

TEST_CASE("statusClass: the edges of every class") {
  CHECK(statusClass(0) == StatusClass::None);
  CHECK(statusClass(100) == StatusClass::None);
  CHECK(statusClass(199) == StatusClass::None);
  CHECK(statusClass(200) == StatusClass::Success);
  CHECK(statusClass(299) == StatusClass::Success);
  CHECK(statusClass(300) == StatusClass::Redirection);
  CHECK(statusClass(399) == StatusClass::Redirection);
  CHECK(statusClass(400) == StatusClass::ClientError);
  CHECK(statusClass(429) == StatusClass::ClientError);
  CHECK(statusClass(499) == StatusClass::ClientError);
  CHECK(statusClass(500) == StatusClass::ServerError);
  CHECK(statusClass(599) == StatusClass::ServerError);
  CHECK(statusClass(600) == StatusClass::None);  // not a 5xx, whatever sent it
  CHECK(statusClass(-1) == StatusClass::None);
}

TEST_CASE("countStatus: one class counter per status, plus the 429 counter for a 429") {
  int c2xx = 0, c3xx = 0, c4xx = 0, c429 = 0, c5xx = 0;
  auto bump = [](int& c) { ++c; };
  for (int status : {0, 101, 200, 204, 301, 404, 429, 429, 500, 503, 599, 600, 999}) {
    countStatus(status, bump, c2xx, c3xx, c4xx, c429, c5xx);
  }
  CHECK(c2xx == 2);
  CHECK(c3xx == 1);
  CHECK(c4xx == 3);  // the 404 and both 429s
  CHECK(c429 == 2);
  CHECK(c5xx == 3);  // 500, 503, 599; not 600 or 999
}
