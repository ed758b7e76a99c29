#include "config/filter_parsers.h"

namespace flowguard::config {

const std::vector<FilterParser>& filterParsers() {
  static const std::vector<FilterParser> kParsers{
      {"router", true, &parseRouterFilter},
  };
  return kParsers;
}

const FilterParser* findFilterParser(std::string_view name) {
  for (const FilterParser& parser : filterParsers()) {
    if (parser.name == name) return &parser;
  }
  return nullptr;
}

}  // namespace flowguard::config
