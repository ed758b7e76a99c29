// Internal to config/: the table of filters flowguard.yaml knows. Each filter's YAML keys are
// parsed by its own function into its own struct; adding a filter means adding its struct to
// FilterSettings (config.h), writing its parse function, and adding one row to the table in
// filter_parsers.cc.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace flowguard::config {

// What a filter parser may look at besides its own node.
struct FilterParseContext {
  YamlReader& reader;
  const std::set<std::string>& clusterNames;  // every cluster the file defines
};

// `node` is the filter's map: `name:` plus the filter's own keys at the same level. Problems
// are reported through ctx.reader; the returned settings are only used when there were none.
using FilterParseFn = FilterSettings (*)(const YAML::Node& node, FilterParseContext& ctx);

struct FilterParser {
  std::string_view name;
  // A terminal filter answers the request itself; a listener's chain must end with exactly
  // one of them (today: the router).
  bool terminal;
  FilterParseFn parse;
};

const std::vector<FilterParser>& filterParsers();
const FilterParser* findFilterParser(std::string_view name);

// One function per filter.
FilterSettings parseRouterFilter(const YAML::Node& node, FilterParseContext& ctx);

}  // namespace flowguard::config
