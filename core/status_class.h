// The one classifier of response statuses for every counter that splits answers by class:
// the metrics filter, hosts, key usage and the load generator. Classes follow RFC 9110 15:
// 5xx is 500..599 (as Envoy's CodeUtility counts it); a 429 is a 4xx and is also counted on
// its own where a counter keeps it apart. Status 0 (no answer) and 1xx are in no class.
#pragma once

namespace flowguard::core {

enum class StatusClass { None, Success, Redirection, ClientError, ServerError };

constexpr StatusClass statusClass(int status) {
  if (status >= 200 && status < 300) return StatusClass::Success;
  if (status >= 300 && status < 400) return StatusClass::Redirection;
  if (status >= 400 && status < 500) return StatusClass::ClientError;
  if (status >= 500 && status < 600) return StatusClass::ServerError;
  return StatusClass::None;
}

// Increments the counter of `status`'s class among c2xx..c5xx, and c429 for a 429 (which is
// also in c4xx). `bump` increments one counter: a relaxed add for atomics, ++ for integers.
template <typename Bump, typename Counter>
constexpr void countStatus(int status, Bump bump, Counter& c2xx, Counter& c3xx, Counter& c4xx, Counter& c429,
                           Counter& c5xx) {
  switch (statusClass(status)) {
    case StatusClass::Success:
      bump(c2xx);
      break;
    case StatusClass::Redirection:
      bump(c3xx);
      break;
    case StatusClass::ClientError:
      bump(c4xx);
      if (status == 429) bump(c429);
      break;
    case StatusClass::ServerError:
      bump(c5xx);
      break;
    case StatusClass::None:
      break;
  }
}

}  // namespace flowguard::core
