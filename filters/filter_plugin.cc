#include "filters/filter_plugin.h"

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

const FilterPlugin* findFilterPlugin(std::string_view name) {
  for (const FilterPlugin& plugin : plugins()) {
    if (plugin.name == name) return &plugin;
  }
  return nullptr;
}

}  // namespace flowguard::filters
