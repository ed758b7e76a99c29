// The one place that makes the rate_limit filter known (filters/README.md).
#include "filters/rate_limit/rate_limit.h"

namespace flowguard::filters::plugged {

namespace {

std::unique_ptr<core::FilterFactory> createFactory(const RateLimitSettings& settings,
                                                   FilterContext& context) {
  return std::make_unique<RateLimitFilterFactory>(settings, context);
}

std::shared_ptr<RateLimitShared> createState(const RateLimitSettings&) {
  return std::make_shared<RateLimitShared>();
}

}  // namespace

void register_rate_limit() {
  registerFilter(FilterRegistration<RateLimitSettings, RateLimitShared>{
      .name = "rate_limit",
      .parse = &parseRateLimit,
      .createFactory = &createFactory,
      .dump = &dumpRateLimit,
      .stats = kRateLimitStats,
      .perRouteKeys = {"algorithm", "rate", "burst", "limit", "window", "by", "shadow"},
      // A route that sets one of these gives its limit whole: its fixed window does not
      // inherit the listener's burst.
      .perRouteTogether = {"algorithm", "rate", "burst", "limit", "window", "overrides"},
      .createState = &createState,
      .checkChain = &checkRateLimitChain,
      .restartNeeded = &rateLimitRestartNeeded,
  });
}

}  // namespace flowguard::filters::plugged
