#include "filters/filter_registry.h"

#include <fmt/format.h>

#include <stdexcept>
#include <type_traits>

#include "filters/filter_plugin.h"
#include "filters/router.h"

namespace flowguard::filters {

FilterSharedState createSharedState(const config::FilterConfig& filter) {
  FilterSharedState shared;
  if (const FilterPlugin* plugin = findFilterPlugin(filter.name)) {
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
  if (keep && plugin->refreshState) plugin->refreshState(*state.state, *now->settings);
  return state;
}

std::vector<std::string> secretFields(const config::FilterConfig& filter) {
  const FilterPlugin* plugin = findFilterPlugin(filter.name);
  const auto* plugged = std::get_if<config::PluginFilterConfig>(&filter.settings);
  if (plugin == nullptr || !plugin->secretFields || plugged == nullptr || plugged->settings == nullptr)
    return {};
  return plugin->secretFields(*plugged->settings);
}

std::string exitSummary(std::string_view listener, const config::FilterConfig& filter,
                        const FilterSharedState& shared) {
  const FilterPlugin* plugin = findFilterPlugin(filter.name);
  const bool summarized = shared.state && plugin != nullptr && plugin->summary;
  if (!shared.stats || (shared.stats->decls().empty() && !summarized)) return "";  // nothing to say
  std::string line = fmt::format("flowguard: {} {}:", filter.name, listener);
  const auto decls = shared.stats->decls();
  for (size_t i = 0; i < decls.size(); ++i)
    line += fmt::format(" {}={}", decls[i].name, shared.stats->value(i));
  if (summarized) line += plugin->summary(*shared.state);
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
