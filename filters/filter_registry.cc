#include "filters/filter_registry.h"

#include <stdexcept>
#include <type_traits>

#include "filters/auth.h"
#include "filters/filter_plugin.h"
#include "filters/router.h"

namespace flowguard::filters {

FilterSharedState createSharedState(const config::FilterConfig& filter) {
  FilterSharedState shared;
  if (const auto* auth = std::get_if<config::AuthConfig>(&filter.settings)) {
    shared.keys = std::make_shared<KeyRegistry>(staticKeySnapshot(*auth));
  } else if (std::holds_alternative<config::RateLimitConfig>(filter.settings)) {
    shared.rateLimit = std::make_shared<RateLimitShared>();
  } else if (const auto* metrics = std::get_if<config::MetricsConfig>(&filter.settings)) {
    shared.metrics = std::make_shared<MetricsRegistry>(metrics->maxKeySeries);
  } else if (const FilterPlugin* plugin = findFilterPlugin(filter.name)) {
    shared.pluginStats = std::make_shared<core::StatSet>(plugin->stats);
  }
  return shared;
}

std::unique_ptr<core::FilterFactory> createFilterFactory(const config::FilterConfig& filter,
                                                         const config::ListenerConfig& listener,
                                                         const FilterSharedState& shared,
                                                         WorkerResources& resources) {
  return std::visit(
      [&](const auto& settings) -> std::unique_ptr<core::FilterFactory> {
        using T = std::decay_t<decltype(settings)>;
        if constexpr (std::is_same_v<T, config::RouterConfig>) {
          return std::make_unique<RouterFilterFactory>(settings, resources);
        } else if constexpr (std::is_same_v<T, config::AuthConfig>) {
          const config::RouterConfig* router = nullptr;
          for (const auto& other : listener.filters) {
            if (const auto* r = std::get_if<config::RouterConfig>(&other.settings)) router = r;
          }
          return std::make_unique<AuthFilterFactory>(settings, router, shared.keys, resources.storedKeys);
        } else if constexpr (std::is_same_v<T, config::RateLimitConfig>) {
          if (settings.store == config::RateLimitStore::Redis && resources.redis == nullptr) {
            throw std::runtime_error("rate_limit store: redis needs a top-level redis: section");
          }
          return std::make_unique<RateLimitFilterFactory>(settings, listener, shared.rateLimit,
                                                          resources.dispatcher.loop(), resources.redis);
        } else if constexpr (std::is_same_v<T, config::MetricsConfig>) {
          return std::make_unique<MetricsFilterFactory>(settings, listener, shared.metrics, resources);
        } else {
          static_assert(std::is_same_v<T, config::PluginFilterConfig>);
          const FilterPlugin* plugin = findFilterPlugin(filter.name);
          if (plugin == nullptr || settings.settings == nullptr || shared.pluginStats == nullptr) {
            throw std::logic_error("filter '" + filter.name + "' was parsed but is not registered");
          }
          FilterContext context{filter.name, listener, resources, *shared.pluginStats};
          return plugin->createFactory(*settings.settings, context);
        }
      },
      filter.settings);
}

}  // namespace flowguard::filters
