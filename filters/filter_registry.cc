#include "filters/filter_registry.h"

#include <fmt/format.h>

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
  } else if (const FilterPlugin* plugin = findFilterPlugin(filter.name)) {
    shared.stats = std::make_shared<core::StatSet>(plugin->stats);
    const auto* plugged = std::get_if<config::PluginFilterConfig>(&filter.settings);
    if (plugin->createState && plugged != nullptr && plugged->settings != nullptr) {
      shared.state = plugin->createState(*plugged->settings);
    }
  }
  return shared;
}

FilterSharedState carryOverSharedState(const config::FilterConfig& before, const FilterSharedState& old,
                                       const config::FilterConfig& filter) {
  FilterSharedState state;
  if (const auto* auth = std::get_if<config::AuthConfig>(&filter.settings)) {
    // The same registry, with the new file's keys: requests still on the old chain see
    // them too, which is what an operator who just revoked a key wants.
    state.keys = old.keys;
    state.keys->publish(staticKeySnapshot(*auth));
    return state;
  }
  const FilterPlugin* plugin = findFilterPlugin(filter.name);
  const auto* was = std::get_if<config::PluginFilterConfig>(&before.settings);
  const auto* now = std::get_if<config::PluginFilterConfig>(&filter.settings);
  if (plugin == nullptr || old.stats == nullptr || was == nullptr || now == nullptr) {
    return createSharedState(filter);
  }
  state.stats = old.stats;  // a plugged filter's counters go on counting
  const bool keep =
      old.state != nullptr && (!plugin->keepsState || plugin->keepsState(*was->settings, *now->settings));
  state.state = keep ? old.state : createSharedState(filter).state;
  return state;
}

std::string exitSummary(std::string_view listener, const config::FilterConfig& filter,
                        const FilterSharedState& shared) {
  if (!shared.stats) return "";
  std::string line = fmt::format("flowguard: {} {}:", filter.name, listener);
  const auto decls = shared.stats->decls();
  for (size_t i = 0; i < decls.size(); ++i)
    line += fmt::format(" {}={}", decls[i].name, shared.stats->value(i));
  const FilterPlugin* plugin = findFilterPlugin(filter.name);
  if (shared.state && plugin != nullptr && plugin->summary) line += plugin->summary(*shared.state);
  return line;
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
        } else {
          static_assert(std::is_same_v<T, config::PluginFilterConfig>);
          const FilterPlugin* plugin = findFilterPlugin(filter.name);
          if (plugin == nullptr || settings.settings == nullptr || shared.stats == nullptr) {
            throw std::logic_error("filter '" + filter.name + "' was parsed but is not registered");
          }
          FilterContext context{filter.name, listener, resources, *shared.stats, shared.state};
          return plugin->createFactory(*settings.settings, context);
        }
      },
      filter.settings);
}

}  // namespace flowguard::filters
