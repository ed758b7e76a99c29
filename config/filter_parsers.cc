#include "config/filter_parsers.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace flowguard::config {

namespace {

std::vector<FilterParser>& parserTable() {
  static std::vector<FilterParser> parsers{
      {"router", true, &parseRouterFilter},
  };
  return parsers;
}

}  // namespace

const std::vector<FilterParser>& filterParsers() {
  return parserTable();
}

const FilterParser* findFilterParser(std::string_view name) {
  for (const FilterParser& parser : filterParsers()) {
    if (parser.name == name) return &parser;
  }
  return nullptr;
}

void registerFilterParser(FilterParser parser) {
  if (findFilterParser(parser.name) != nullptr) {
    throw std::logic_error(fmt::format("filter '{}' is registered twice", parser.name));
  }
  parser.plugged = true;
  parserTable().push_back(std::move(parser));
}

void checkFilterChain(YamlReader& r, const std::vector<FilterConfig>& filters) {
  for (const FilterConfig& filter : filters) {
    const auto* plugged = std::get_if<PluginFilterConfig>(&filter.settings);
    const FilterParser* parser = findFilterParser(filter.name);
    if (plugged != nullptr && plugged->settings != nullptr && parser != nullptr && parser->checkChain) {
      parser->checkChain(*plugged->settings, filters, r);
    }
  }
}

}  // namespace flowguard::config
