// Helpers shared by the config tests: load a YAML snippet named "t.yaml" and look at
// its errors or its Config.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "filters/filter_plugin.h"

namespace flowguard::config::test {

// The filters of filters/<name>/ folders (metrics, cors...) parse only once registered, as
// the gateway's main() registers them before reading a config.
inline const bool kFiltersRegistered = (filters::registerPluggedFilters(), true);

// The settings of a filter of its own folder, as its parser made them.
template <class Settings>
const Settings& pluginSettings(const FilterConfig& filter) {
  const auto* plugged = std::get_if<PluginFilterConfig>(&filter.settings);
  REQUIRE(plugged);
  const auto* settings = dynamic_cast<const Settings*>(plugged->settings.get());
  REQUIRE(settings);
  return *settings;
}

inline std::vector<std::string> errorsOf(const std::string& yaml) {
  LoadResult result = loadConfigText(yaml, "t.yaml");
  std::vector<std::string> out;
  for (const ConfigError& e : result.errors) out.push_back(e.str());
  CHECK(result.ok() == (result.config != nullptr));
  return out;
}

// The one error a snippet must produce, or a failed check listing what came instead.
inline std::string onlyError(const std::string& yaml) {
  std::vector<std::string> errors = errorsOf(yaml);
  INFO("errors: " << [&] {
    std::string all;
    for (const std::string& e : errors) all += "\n  " + e;
    return all;
  }());
  REQUIRE(errors.size() == 1);
  return errors[0];
}

inline std::shared_ptr<const Config> loadOk(const std::string& yaml) {
  LoadResult result = loadConfigText(yaml, "t.yaml");
  for (const ConfigError& e : result.errors) FAIL_CHECK(e.str());
  REQUIRE(result.ok());
  REQUIRE(result.config);
  return result.config;
}

}  // namespace flowguard::config::test
