#include "backend/faults.h"

#include <charconv>
#include <cmath>
#include <fmt/format.h>

namespace flowguard::backend {

namespace {

using Json = nlohmann::ordered_json;

// Independent stream for /health, derived from the seed (golden-ratio constant).
constexpr uint64_t kHealthSeedMix = 0x9e3779b97f4a7c15ull;

bool parseMs(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::string readRate(const Json& value, std::string_view name, double& out) {
  if (!value.is_number()) return fmt::format("{} must be a number from 0 to 1", name);
  double v = value.get<double>();
  if (!std::isfinite(v) || v < 0 || v > 1) {
    return fmt::format("{} must be a number from 0 to 1", name);
  }
  out = v;
  return {};
}

std::string readMs(const Json& value, std::string_view name, uint64_t max, uint64_t& out) {
  // 100.0 is refused too: a fractional millisecond would be silently truncated.
  bool ok = value.is_number_unsigned() ||
            (value.is_number_integer() && value.get<int64_t>() >= 0);
  if (!ok || value.get<uint64_t>() > max) {
    return fmt::format("{} must be an integer number of milliseconds from 0 to {}", name, max);
  }
  out = value.get<uint64_t>();
  return {};
}

}  // namespace

bool FaultSettings::any() const {
  return failRate > 0 || latencyMs > 0 || latencyJitterMs > 0 || healthFailRate > 0 ||
         flapIntervalMs > 0 || resetRate > 0 || hangRate > 0 || healthy.has_value();
}

FaultInjector::FaultInjector(FaultSettings settings, uint64_t seed, uint64_t nowMs)
    : settings_(settings),
      seed_(seed),
      flapEpochMs_(nowMs),
      requestRng_(seed),
      healthRng_(seed ^ kHealthSeedMix) {}

void FaultInjector::setSettings(const FaultSettings& settings, uint64_t nowMs) {
  if (settings.flapIntervalMs != settings_.flapIntervalMs) flapEpochMs_ = nowMs;
  settings_ = settings;
}

FaultDecision FaultInjector::decideRequest() {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // Drawn unconditionally, in a fixed order: see the header.
  double hang = unit(requestRng_);
  double reset = unit(requestRng_);
  double fail = unit(requestRng_);
  bool fiveHundred = unit(requestRng_) < 0.5;
  auto jitter = static_cast<int64_t>(settings_.latencyJitterMs);
  int64_t offset = std::uniform_int_distribution<int64_t>(-jitter, jitter)(requestRng_);

  FaultDecision d;
  int64_t delay = static_cast<int64_t>(settings_.latencyMs) + offset;
  d.delayMs = delay > 0 ? static_cast<uint64_t>(delay) : 0;
  // uniform_real_distribution yields [0, 1): a rate of 1 always hits, 0 never does.
  if (hang < settings_.hangRate) {
    d.kind = FaultKind::Hang;
  } else if (reset < settings_.resetRate) {
    d.kind = FaultKind::Reset;
  } else if (fail < settings_.failRate) {
    d.kind = FaultKind::Fail;
    d.failStatus = fiveHundred ? 500 : 503;
  }
  return d;
}

bool FaultInjector::checkHealth(uint64_t nowMs) {
  ++counters_.healthChecks;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double roll = unit(healthRng_);
  bool healthy;
  if (settings_.healthy.has_value()) {
    healthy = *settings_.healthy;
  } else if (settings_.flapIntervalMs > 0 &&
             ((nowMs - flapEpochMs_) / settings_.flapIntervalMs) % 2 == 1) {
    healthy = false;  // an unhealthy period of the flap cycle
  } else {
    healthy = !(roll < settings_.healthFailRate);
  }
  if (!healthy) ++counters_.healthFailures;
  return healthy;
}

uint64_t randomSeed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

std::string parseLatencySpec(std::string_view text, uint64_t& ms, uint64_t& jitterMs) {
  size_t colon = text.find(':');
  uint64_t base = 0;
  uint64_t jitter = 0;
  bool ok = parseMs(text.substr(0, colon), base) &&
            (colon == std::string_view::npos || parseMs(text.substr(colon + 1), jitter));
  if (!ok || base > kMaxLatencyMs || jitter > kMaxLatencyMs) {
    return fmt::format("--latency takes MS or MS:JITTER, milliseconds from 0 to {}",
                       kMaxLatencyMs);
  }
  ms = base;
  jitterMs = jitter;
  return {};
}

std::string applyFaultUpdate(std::string_view body, const FaultSettings& current,
                             FaultSettings& out) {
  Json json;
  try {
    json = Json::parse(body);
  } catch (const Json::parse_error& e) {
    return fmt::format("body is not valid JSON: {}", e.what());
  }
  if (!json.is_object()) return "body must be a JSON object";
  FaultSettings next = current;
  for (const auto& [key, value] : json.items()) {
    std::string error;
    if (key == "fail_rate") {
      error = readRate(value, key, next.failRate);
    } else if (key == "health_fail_rate") {
      error = readRate(value, key, next.healthFailRate);
    } else if (key == "reset_rate") {
      error = readRate(value, key, next.resetRate);
    } else if (key == "hang_rate") {
      error = readRate(value, key, next.hangRate);
    } else if (key == "latency_ms") {
      error = readMs(value, key, kMaxLatencyMs, next.latencyMs);
    } else if (key == "latency_jitter_ms") {
      error = readMs(value, key, kMaxLatencyMs, next.latencyJitterMs);
    } else if (key == "flap_interval_ms") {
      error = readMs(value, key, kMaxFlapIntervalMs, next.flapIntervalMs);
    } else if (key == "healthy") {
      if (value.is_boolean()) {
        next.healthy = value.get<bool>();
      } else if (value.is_null()) {
        next.healthy.reset();
      } else {
        error = "healthy must be true, false or null (automatic)";
      }
    } else {
      error = fmt::format(
          "unknown field \"{}\" (known: fail_rate, latency_ms, latency_jitter_ms, "
          "health_fail_rate, flap_interval_ms, reset_rate, hang_rate, healthy)",
          key);
    }
    if (!error.empty()) return error;
  }
  out = next;
  return {};
}

nlohmann::ordered_json faultSettingsJson(const FaultSettings& s, uint64_t seed) {
  return Json{{"fail_rate", s.failRate},
              {"latency_ms", s.latencyMs},
              {"latency_jitter_ms", s.latencyJitterMs},
              {"health_fail_rate", s.healthFailRate},
              {"flap_interval_ms", s.flapIntervalMs},
              {"reset_rate", s.resetRate},
              {"hang_rate", s.hangRate},
              {"healthy", s.healthy.has_value() ? Json(*s.healthy) : Json(nullptr)},
              {"seed", seed}};
}

std::string describeFaults(const FaultSettings& s, uint64_t seed) {
  if (!s.any()) return {};
  std::string out;
  auto add = [&out](std::string item) {
    if (!out.empty()) out += ' ';
    out += item;
  };
  if (s.failRate > 0) add(fmt::format("fail-rate={}", s.failRate));
  if (s.latencyMs > 0 || s.latencyJitterMs > 0) {
    add(fmt::format("latency={}+-{}ms", s.latencyMs, s.latencyJitterMs));
  }
  if (s.healthFailRate > 0) add(fmt::format("health-fail-rate={}", s.healthFailRate));
  if (s.flapIntervalMs > 0) add(fmt::format("flap-interval={}ms", s.flapIntervalMs));
  if (s.resetRate > 0) add(fmt::format("reset-rate={}", s.resetRate));
  if (s.hangRate > 0) add(fmt::format("hang-rate={}", s.hangRate));
  if (s.healthy.has_value()) add(*s.healthy ? "healthy=forced-up" : "healthy=forced-down");
  add(fmt::format("seed={}", seed));
  return out;
}

}  // namespace flowguard::backend
