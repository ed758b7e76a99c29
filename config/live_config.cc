#include "config/live_config.h"

#include "config/filter_parsers.h"

namespace flowguard::config {

std::vector<std::string> sectionsNeedingRestart(const Config& running, const Config& next) {
  std::vector<std::string> sections;
  if (running.workers != next.workers) sections.push_back("workers");
  if (!(running.redis == next.redis)) sections.push_back("redis");
  if (!(running.storage == next.storage)) sections.push_back("storage");
  if (!(running.admin == next.admin)) sections.push_back("admin");
  if (running.stateDir != next.stateDir) sections.push_back("state_dir");
  return sections;
}

std::shared_ptr<const Config> applicableConfig(const Config& running, const Config& next,
                                               std::vector<ConfigError>& errors) {
  auto config = std::make_shared<Config>(next);
  config->workers = running.workers;
  config->redis = running.redis;
  config->storage = running.storage;
  config->admin = running.admin;
  config->stateDir = running.stateDir;
  auto fail = [&](SourceLocation at, std::string message) {
    errors.push_back(ConfigError{next.sourcePath, at.line, at.column, std::move(message)});
  };
  for (const auto& listener : config->listeners) {
    for (const auto& filter : listener.filters) {
      const FilterParser* parser = findFilterParser(filter.name);
      if (const auto* plugged = std::get_if<PluginFilterConfig>(&filter.settings)) {
        if (parser != nullptr && parser->restartNeeded && plugged->settings != nullptr) {
          if (std::string why = parser->restartNeeded(*plugged->settings, running); !why.empty()) {
            fail(filter.location, std::move(why));
          }
        }
      } else if (const auto* router = std::get_if<RouterConfig>(&filter.settings)) {
        for (const auto& route : router->routes) {
          if (route.handler.kind != RouteHandler::None && !config->storage.configured) {
            fail(route.location,
                 "this handler needs the key store, which this gateway started without: "
                 "restart it to add the storage section");
          }
        }
      }
    }
  }
  return config;
}

}  // namespace flowguard::config
