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
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/local_rate_limit_store.h"
#include "filters/redis_rate_limiter.h"

namespace flowguard::filters {

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

// Shared by every worker's factory for one rate_limit entry of one listener.
struct RateLimitShared {
  LocalRateLimitStore local;  // `store: local`, and `failure_mode: local`
  core::StatSet stats{kRateLimitStats};
};

class RateLimitFilterFactory : public core::FilterFactory {
 public:
  RateLimitFilterFactory(const config::RateLimitConfig& config, const config::ListenerConfig& listener,
                         std::shared_ptr<RateLimitShared> shared, uv_loop_t* loop, RedisRateLimiter* redis);
  std::unique_ptr<core::Filter> create() override;

 private:
  friend class RateLimitFilter;
  const config::RateLimitSpec& specFor(const config::RateLimitConfig& config,
                                       const core::StreamInfo& info) const;

  const config::RateLimitConfig& config_;
  const config::ListenerConfig& listener_;
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
  const config::RateLimitConfig* config_ = nullptr;  // the listener's, or the matched route's own
  int ownRoute_ = -1;                                // index of a route with its own settings
  const config::RateLimitSpec* spec_ = nullptr;
  std::string key_;
  std::optional<RateLimitDecision> decision_;
  RedisRateLimiter::Handle pending_ = 0;
  bool done_ = false;
};

}  // namespace flowguard::filters
