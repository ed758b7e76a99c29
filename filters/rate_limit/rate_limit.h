// `rate_limit`: per API key (or per client IP for anonymous requests, or when configured
// `by: client_ip`), optionally per route; a route may turn it off or have a limit of its own
// (`per_filter: { rate_limit: {...} }`, counted apart from the rest). Limits: the key's own (from its
// record), an override for the key's name, or the filter's default. Decided in-process (`store: local`, exact
// across this process's workers) or in Redis (shared by every replica; see RedisRateLimiter), with
// failure_mode for when Redis does not answer in time. Every response carries RateLimit-* and X-RateLimit-*
// headers; a 429 adds Retry-After.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"
#include "filters/local_rate_limit_store.h"
#include "filters/redis_rate_limiter.h"

namespace flowguard::filters {

// ---- settings ------------------------------------------------------------------------------
//
//   - name: rate_limit
//     rate: 10/s              # token bucket (default); or limit: 100 + window: 1m with
//     burst: 20               #   algorithm: fixed_window or sliding_window
//     by: api_key             # or client_ip; requests without a key count by client IP
//     per_route: false        # separate counters per route
//     store: local            # or redis (needs the top-level redis: section)
//     failure_mode: allow     # when Redis is down or slow: allow, deny, local
//     shadow: false           # count would-be rejections, reject nothing
//     overrides: [ { key: <auth key name>, rate: 100/s } ]

enum class RateLimitKeyBy { ApiKey, ClientIp };
enum class RateLimitStore { Local, Redis };
enum class RateLimitFailureMode { Allow, Deny, Local };

struct RateLimitOverride {
  std::string key;  // an API key's name (auth keys[].name)
  config::RateLimitSpec limit;
  config::SourceLocation location;
  bool operator==(const RateLimitOverride&) const = default;
};

// A listener's settings, or a route's (`per_filter: { rate_limit: { rate: 100/s, burst: 200 } }`:
// the listener's, with the route's keys in their place, counted in buckets of the route's own).
struct RateLimitSettings : config::PluginSettingsOf<RateLimitSettings> {
  config::RateLimitSpec limit;                 // default for every key / client
  RateLimitKeyBy by = RateLimitKeyBy::ApiKey;  // requests without a key fall back to client IP
  bool perRoute = false;                       // separate counters per route
  RateLimitStore store = RateLimitStore::Local;
  RateLimitFailureMode failureMode = RateLimitFailureMode::Allow;  // when Redis is down/slow
  bool shadow = false;  // count would-be rejections, reject nothing
  std::vector<RateLimitOverride> overrides;
  // A route's settings that set its limit: it applies to every caller there (overrides and
  // key plans are the listener's limit's, not the route's).
  bool ownLimit = false;
  bool operator==(const RateLimitSettings&) const = default;
};

std::shared_ptr<const RateLimitSettings> parseRateLimit(const YAML::Node& node,
                                                        config::FilterParseContext& ctx);
nlohmann::json dumpRateLimit(const RateLimitSettings& settings);
// Between the filters of a listener: an override must name a key of its auth filter.
void checkRateLimitChain(const RateLimitSettings& settings, const std::vector<config::FilterConfig>& chain,
                         config::YamlReader& reader);
// What keeps a reload from applying the settings to the running gateway ("" when nothing).
std::string rateLimitRestartNeeded(const RateLimitSettings& settings, const config::Config& running);

// The filter's counters, declared once: /stats (`rate_limit.<listener>`), Prometheus
// (flowguard_rate_limit_decisions_total{listener,outcome}, flowguard_rate_limit_failure_mode_decisions_total)
// and the exit line are made from this table.
enum class RateLimitStat { Allowed, Limited, ShadowLimited, FailureModeDecisions };
inline constexpr core::StatDecl kRateLimitStats[] = {
    {"allowed", "Rate-limit decisions, by listener and outcome.", "decisions", "outcome=\"allowed\""},
    {"limited", "", "decisions", "outcome=\"limited\""},
    // Would have been limited, under `shadow: true`.
    {"shadow_limited", "", "decisions", "outcome=\"shadow_limited\""},
    {"failure_mode_decisions", "Requests decided by failure_mode because Redis was down or slow."},
};

// The filter's state, shared by every worker's factory for one rate_limit entry of one
// listener, and kept across reloads: counters of unchanged limits keep their tokens.
struct RateLimitShared : FilterState {
  LocalRateLimitStore local;  // `store: local`, and `failure_mode: local`
};

class RateLimitFilterFactory : public core::FilterFactory {
 public:
  RateLimitFilterFactory(const RateLimitSettings& config, FilterContext& context);
  std::unique_ptr<core::Filter> create() override;

 private:
  friend class RateLimitFilter;
  const config::RateLimitSpec& specFor(const RateLimitSettings& config, const core::StreamInfo& info) const;

  const RateLimitSettings& config_;
  const config::ListenerConfig& listener_;
  core::StatSet& stats_;
  const config::RouterConfig* router_ = nullptr;  // for per_route descriptors and routes' own settings
  bool routesHaveSettings_ = false;               // some route has per_filter rate_limit
  std::shared_ptr<RateLimitShared> shared_;
  uv_loop_t* loop_;
  RedisRateLimiter* redis_;          // this worker's; null unless store: redis
  std::string keyScratch_;           // descriptor buffer for in-process decisions, reused
  LocalRateLimitStore::View local_;  // this worker's way into shared_->local
};

class RateLimitFilter final : public core::Filter {
 public:
  explicit RateLimitFilter(RateLimitFilterFactory& factory) : factory_(factory) {}
  ~RateLimitFilter() override;
  core::FilterStatus onRequest() override;
  core::FilterStatus onResponseHeaders(core::ResponseHead& head, bool endStream) override;
  void onComplete(const core::StreamInfo& info) override;

 private:
  // Applies a decision; returns false when the request was answered with 429.
  bool apply(const RateLimitDecision& decision);
  void onRedisAnswer(std::optional<RateLimitDecision> decision);
  void descriptor(std::string& key);

  RateLimitFilterFactory& factory_;
  const RateLimitSettings* config_ = nullptr;  // the listener's, or the matched route's own
  int ownRoute_ = -1;                          // index of a route with its own settings
  const config::RateLimitSpec* spec_ = nullptr;
  std::string key_;
  std::optional<RateLimitDecision> decision_;
  RedisRateLimiter::Handle pending_ = 0;
  bool done_ = false;
};

}  // namespace flowguard::filters
