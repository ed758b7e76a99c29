#include "core/wall_clock.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>

namespace flowguard::core {

int64_t unixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string isoTimeMs(int64_t unixMs) {
  const std::chrono::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds(unixMs)};
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", std::chrono::floor<std::chrono::seconds>(t), unixMs % 1000);
}

}  // namespace flowguard::core
