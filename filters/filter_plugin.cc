#include "filters/filter_plugin.h"

#include "filters/route_match.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

namespace flowguard::filters {

namespace {

// Filled at start-up, before any worker exists; read-only afterwards.
std::vector<FilterPlugin>& plugins() {
  static std::vector<FilterPlugin> registered;
  return registered;
}

}  // namespace

void registerFilterPlugin(FilterPlugin plugin, config::FilterParser parser) {
  if (findFilterPlugin(plugin.name) != nullptr) {
    throw std::logic_error(fmt::format("filter '{}' is registered twice", plugin.name));
  }
  config::registerFilterParser(std::move(parser));
  plugins().push_back(std::move(plugin));
}

PerRouteLookup::PerRouteLookup(std::string_view filter, const config::ListenerConfig& listener)
    : filter_(filter) {
  for (const config::FilterConfig& entry : listener.filters) {
    const auto* router = std::get_if<config::RouterConfig>(&entry.settings);
    if (router == nullptr) continue;
    for (const config::Route& route : router->routes) {
      if (route.perFilterFor(filter_) != nullptr) router_ = router;
    }
  }
}

const config::RoutePerFilter* PerRouteLookup::find(const core::RequestHead& head,
                                                   core::StreamInfo& info) const {
  if (router_ == nullptr) return nullptr;
  const config::Route* route = routeFor(*router_, head, info);
  return route != nullptr ? route->perFilterFor(filter_) : nullptr;
}

const FilterPlugin* findFilterPlugin(std::string_view name) {
  for (const FilterPlugin& plugin : plugins()) {
    if (plugin.name == name) return &plugin;
  }
  return nullptr;
}

}  // namespace flowguard::filters
