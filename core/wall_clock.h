// Wall-clock time for what people read (logs, JSON answers): unix milliseconds and their
// ISO 8601 form. Durations and deadlines use the monotonic clocks instead.
#pragma once

#include <cstdint>
#include <string>

namespace flowguard::core {

int64_t unixNowMs();
// "2026-11-28T06:29:04.123Z"
std::string isoTimeMs(int64_t unixMs);

}  // namespace flowguard::core
