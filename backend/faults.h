// Fault injection for flowguard-backend, so gateway failover (retries, health checks,
// outlier ejection, timeouts) can be demonstrated and tested against a misbehaving upstream.
//
// FaultInjector holds the current settings, the seeded random generators and the counters.
// It does no I/O and takes the time as an argument; the connection code decides what a
// fault looks like on the wire. Single-threaded: every call runs on the backend's loop.
//
// Which requests are affected: every request except /health (which has its own health
// faults), /_stats and /_fault. For each such request the injector draws, in this order:
// hang (hang_rate), reset (reset_rate, among requests not hung), failure (fail_rate, among
// requests neither hung nor reset), the failure status (500 or 503, even odds) and the
// latency jitter. All five values are drawn for every request, whatever the rates, so a
// given seed gives the same sequence of decisions for any mix of settings. /health has a
// separate generator, so health probes (e.g. a gateway's checker) never shift the request
// sequence.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace flowguard::backend {

inline constexpr uint64_t kMaxLatencyMs = 10 * 60 * 1000;
inline constexpr uint64_t kMaxFlapIntervalMs = 24ull * 60 * 60 * 1000;
// POST /_fault bodies above this are refused (413): the knobs fit in a few hundred bytes.
inline constexpr size_t kMaxFaultBodyBytes = 64 * 1024;

struct FaultSettings {
  double failRate = 0;        // share of requests answered 500/503 {"error":"injected failure"}
  uint64_t latencyMs = 0;     // every affected response waits latencyMs +- latencyJitterMs
  uint64_t latencyJitterMs = 0;  // uniform; a negative total is clamped to 0
  double healthFailRate = 0;  // share of /health probes answered 503 (in healthy periods)
  uint64_t flapIntervalMs = 0;  // > 0: health alternates healthy/unhealthy every interval
  double resetRate = 0;       // share of requests: head + half the body, then a TCP reset
  double hangRate = 0;        // share of requests read and never answered
  std::optional<bool> healthy;  // forced health; nullopt: automatic (flap + fail rate)

  // True when any fault is configured (the startup line then lists them).
  bool any() const;
  bool operator==(const FaultSettings&) const = default;
};

struct FaultCounters {
  uint64_t healthChecks = 0;
  uint64_t healthFailures = 0;
  uint64_t injectedFailures = 0;
  uint64_t resets = 0;
  uint64_t hangs = 0;
};

enum class FaultKind { None, Fail, Reset, Hang };

struct FaultDecision {
  FaultKind kind = FaultKind::None;
  int failStatus = 0;    // 500 or 503, for FaultKind::Fail
  uint64_t delayMs = 0;  // latency to add before answering
};

class FaultInjector {
 public:
  // nowMs: any monotonic millisecond clock (the loop's); the flap cycle starts there.
  FaultInjector(FaultSettings settings, uint64_t seed, uint64_t nowMs);

  const FaultSettings& settings() const { return settings_; }
  uint64_t seed() const { return seed_; }
  // Replaces the settings. A changed flap interval restarts the cycle (healthy first).
  void setSettings(const FaultSettings& settings, uint64_t nowMs);

  // The fate of one affected request (see the header comment for the draw order).
  FaultDecision decideRequest();
  // Whether one /health probe passes; counts it in healthChecks / healthFailures.
  bool checkHealth(uint64_t nowMs);

  FaultCounters& counters() { return counters_; }
  const FaultCounters& counters() const { return counters_; }

 private:
  FaultSettings settings_;
  uint64_t seed_;
  uint64_t flapEpochMs_;
  std::mt19937_64 requestRng_;
  std::mt19937_64 healthRng_;
  FaultCounters counters_;
};

// A random seed for when --seed is not given.
uint64_t randomSeed();

// "MS" or "MS:JITTER" (milliseconds, each up to kMaxLatencyMs). Returns "" or an error.
std::string parseLatencySpec(std::string_view text, uint64_t& ms, uint64_t& jitterMs);

// Applies a POST /_fault body to `current`: a JSON object with any subset of fail_rate,
// latency_ms, latency_jitter_ms, health_fail_rate, flap_interval_ms, reset_rate, hang_rate
// (absent: unchanged) and healthy (true/false: forced; null: automatic; absent: unchanged).
// All fields are validated before any is applied; returns "" and sets `out`, or returns a
// message naming the bad field (unknown fields are errors, so a typo is not silently ignored).
std::string applyFaultUpdate(std::string_view body, const FaultSettings& current,
                             FaultSettings& out);

// The settings as the JSON object that GET/POST /_fault answer with (plus the seed).
nlohmann::ordered_json faultSettingsJson(const FaultSettings& settings, uint64_t seed);

// "fail-rate=0.5 latency=100+-20ms ... seed=N" for the startup line; "" when !any().
std::string describeFaults(const FaultSettings& settings, uint64_t seed);

}  // namespace flowguard::backend
