#include "filters/rate_limit/rate_limit.h"

#include <array>
#include <charconv>
#include <stdexcept>
#include <typeinfo>

#include <fmt/format.h>
#include <uv.h>

#include "core/decimal.h"
#include "filters/key_registry.h"
#include "filters/route_match.h"

namespace flowguard::filters {

namespace {

uint64_t ceilSeconds(uint64_t ms) {
  return (ms + 999) / 1000;
}

std::string describe(const config::RateLimitSpec& spec) {
  auto per = [&] {
    auto ms = spec.period.count();
    if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
    if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
    if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
    return fmt::format("{}ms", ms);
  }();
  switch (spec.algorithm) {
    case config::RateLimitAlgorithm::TokenBucket:
      return fmt::format("{} per {}, burst {}", spec.requests, per,
                         spec.burst == 0 ? spec.requests : spec.burst);
    case config::RateLimitAlgorithm::FixedWindow:
      return fmt::format("{} per {} (fixed window)", spec.requests, per);
    case config::RateLimitAlgorithm::SlidingWindow:
      return fmt::format("{} per {} (sliding window)", spec.requests, per);
  }
  return {};
}

}  // namespace

RateLimitFilterFactory::RateLimitFilterFactory(const RateLimitSettings& config, FilterContext& context)
    : config_(config),
      listener_(context.listener),
      stats_(context.stats),
      shared_(context.stateAs<RateLimitShared>()),
      loop_(context.resources.dispatcher.loop()),
      redis_(context.resources.redis),
      local_(shared_->local) {
  if (config.store == RateLimitStore::Redis && redis_ == nullptr) {
    throw std::runtime_error("rate_limit store: redis needs a top-level redis: section");
  }
  for (const auto& filter : listener_.filters) {
    if (const auto* router = std::get_if<config::RouterConfig>(&filter.settings)) router_ = router;
  }
  if (router_ != nullptr) {
    for (const config::Route& route : router_->routes) {
      routesHaveSettings_ = routesHaveSettings_ || route.perFilterFor("rate_limit") != nullptr;
    }
  }
}

std::unique_ptr<core::Filter> RateLimitFilterFactory::create() {
  return std::make_unique<RateLimitFilter>(*this);
}

const config::RateLimitSpec& RateLimitFilterFactory::specFor(const RateLimitSettings& config,
                                                             const core::StreamInfo& info) const {
  if (info.apiKey && config.by == RateLimitKeyBy::ApiKey) {
    // Overrides name keys of flowguard.yaml (checked at load); a registered key of the same
    // name (storedKeyId != 0) is someone else and gets its own plan's limit.
    if (info.apiKey->storedKeyId == 0) {
      for (const auto& override : config.overrides) {
        if (override.key == info.apiKey->name) return override.limit;
      }
    }
    // The auth filter's records are exactly ApiKeyRecord: a type check of one compare, the
    // full dynamic_cast (a hundred instructions) only for other kinds of identity.
    const core::AuthenticatedKey* key = info.apiKey.get();
    const auto* record = typeid(*key) == typeid(ApiKeyRecord) ? static_cast<const ApiKeyRecord*>(key)
                                                              : dynamic_cast<const ApiKeyRecord*>(key);
    if (record != nullptr && record->limit) return *record->limit;
  }
  return config.limit;
}

RateLimitFilter::~RateLimitFilter() {
  if (pending_ != 0 && factory_.redis_ != nullptr) factory_.redis_->cancel(pending_);
}

void RateLimitFilter::descriptor(std::string& key) {
  // Listener-qualified, so two listeners (or two replicas' listeners of the same name,
  // through Redis) count the same caller separately per listener.
  const core::StreamInfo& info = callbacks().streamInfo();
  key.assign(factory_.listener_.name);
  if (info.apiKey && config_->by == RateLimitKeyBy::ApiKey) {
    key.append("|k:").append(info.apiKey->id);
  } else {
    key.append("|ip:").append(info.downstreamAddress);
  }
  if (ownRoute_ >= 0) {
    key += fmt::format("|r:{}", ownRoute_);  // the route's own limit, its own buckets
  } else if (factory_.config_.perRoute && factory_.router_ != nullptr) {
    const config::Route* route =
        routeFor(*factory_.router_, callbacks().requestHead(), callbacks().streamInfo());
    key += fmt::format("|r:{}", route == nullptr ? -1 : route - factory_.router_->routes.data());
  }
}

core::FilterStatus RateLimitFilter::onRequest() {
  config_ = &factory_.config_;
  bool ownLimit = false;
  if (factory_.routesHaveSettings_) {
    const config::RouterConfig& router = *factory_.router_;
    const config::Route* route = routeFor(router, callbacks().requestHead(), callbacks().streamInfo());
    const config::RoutePerFilter* entry = route != nullptr ? route->perFilterFor("rate_limit") : nullptr;
    if (entry != nullptr && entry->disabled) return core::FilterStatus::Continue;  // no limit, no headers
    if (entry != nullptr && entry->settings) {
      const auto& own = static_cast<const RateLimitSettings&>(*entry->settings);
      config_ = &own;
      ownRoute_ = static_cast<int>(route - router.routes.data());
      ownLimit = own.ownLimit;
    }
  }
  // A route's own limit is everyone's there; elsewhere a key's override or plan counts.
  spec_ = ownLimit ? &config_->limit : &factory_.specFor(*config_, callbacks().streamInfo());
  if (factory_.config_.store == RateLimitStore::Redis && factory_.redis_ != nullptr) {
    descriptor(key_);  // kept: failure_mode local may need it when Redis does not answer
    // The answer may come before decide() returns (Redis known down): the chain copes
    // with a continueChain() from inside onRequest.
    pending_ = factory_.redis_->decide(key_, *spec_, [this](std::optional<RateLimitDecision> decision) {
      pending_ = 0;
      onRedisAnswer(decision);
    });
    return core::FilterStatus::Stop;
  }
  // In-process: decided now, so the key is built in the worker's reusable buffer.
  descriptor(factory_.keyScratch_);
  auto now = static_cast<int64_t>(uv_now(factory_.loop_));
  return apply(factory_.local_.decide(factory_.keyScratch_, *spec_, now)) ? core::FilterStatus::Continue
                                                                          : core::FilterStatus::Stop;
}

void RateLimitFilter::onRedisAnswer(std::optional<RateLimitDecision> decision) {
  if (done_) return;
  if (!decision) {
    factory_.stats_.add(RateLimitStat::FailureModeDecisions);
    switch (factory_.config_.failureMode) {
      case RateLimitFailureMode::Allow:
        callbacks().continueChain();
        return;
      case RateLimitFailureMode::Deny:
        callbacks().sendLocalReply(429, "rate limit unavailable (failure_mode: deny)");
        return;
      case RateLimitFailureMode::Local: {
        auto now = static_cast<int64_t>(uv_now(factory_.loop_));
        decision = factory_.local_.decide(key_, *spec_, now);
        break;
      }
    }
  }
  if (apply(*decision)) callbacks().continueChain();
}

bool RateLimitFilter::apply(const RateLimitDecision& decision) {
  decision_ = decision;
  core::StatSet& stats = factory_.stats_;
  if (decision.allowed) {
    stats.add(RateLimitStat::Allowed);
    return true;
  }
  if (config_->shadow) {
    stats.add(RateLimitStat::ShadowLimited);
    return true;
  }
  stats.add(RateLimitStat::Limited);
  const auto& info = callbacks().streamInfo();
  std::string who = info.apiKey ? "key " + info.apiKey->name : "client " + info.downstreamAddress;
  callbacks().sendLocalReply(429, fmt::format("rate limit exceeded for {}: {}", who, describe(*spec_)));
  return false;
}

core::FilterStatus RateLimitFilter::onResponseHeaders(core::ResponseHead& head, bool) {
  if (!decision_) return core::FilterStatus::Continue;
  const RateLimitDecision& d = *decision_;
  // Ours replace any the upstream sent. One pass to drop those (an upstream rarely sends
  // any), then plain appends: this runs on every response.
  head.headers.removeIf([](const core::Header& h) {
    const std::string_view name = h.name;
    // Most names fail here: ours are 15, 17, 19 or 21 characters long.
    if (name.size() < 15 || name.size() > 21 || name.size() % 2 == 0) return false;
    auto named = [&](std::string_view suffix) {
      return core::equalsIgnoreCase(name, suffix) ||
             (name.size() == suffix.size() + 2 && core::equalsIgnoreCase(name.substr(0, 2), "x-") &&
              core::equalsIgnoreCase(name.substr(2), suffix));
    };
    return named("ratelimit-limit") || named("ratelimit-remaining") || named("ratelimit-reset");
  });
  core::Decimal limit(d.limit);
  core::Decimal remaining(d.remaining);
  core::Decimal reset(ceilSeconds(d.resetMs));
  head.headers.add("ratelimit-limit", limit.view());
  head.headers.add("ratelimit-remaining", remaining.view());
  head.headers.add("ratelimit-reset", reset.view());
  head.headers.add("x-ratelimit-limit", limit.view());
  head.headers.add("x-ratelimit-remaining", remaining.view());
  head.headers.add("x-ratelimit-reset", reset.view());
  if (head.status == 429 && !d.allowed) {
    head.headers.set("retry-after", core::Decimal(std::max<uint64_t>(1, ceilSeconds(d.retryAfterMs))).view());
  }
  return core::FilterStatus::Continue;
}

void RateLimitFilter::onComplete(const core::StreamInfo&) {
  done_ = true;
  if (pending_ != 0 && factory_.redis_ != nullptr) {
    factory_.redis_->cancel(pending_);
    pending_ = 0;
  }
}

}  // namespace flowguard::filters
