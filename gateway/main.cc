// flowguard: run the gateway, or validate a config without starting it.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "config/config_loader.h"
#include "filters/filter_plugin.h"
#include "gateway/gateway.h"
#include "upstream/cluster_state.h"

namespace {

constexpr const char* kVersion = "0.1.0";

// Prints every error and warning as FILE:LINE:COL: message. Returns the config or null.
std::shared_ptr<const flowguard::config::Config> load(const std::string& path, size_t* warnings = nullptr) {
  auto result = flowguard::config::loadConfigFile(path);
  if (warnings != nullptr) *warnings = result.warnings.size();
  for (const auto& warning : result.warnings) fmt::print(stderr, "{}\n", warning.str());
  for (const auto& error : result.errors) fmt::print(stderr, "{}\n", error.str());
  return result.ok() ? result.config : nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"FlowGuard: an HTTP/1.1 API gateway"};
  app.set_version_flag("--version", fmt::format("flowguard {}", kVersion));
  std::string configPath = "flowguard.yaml";
  app.add_option("-c,--config", configPath, "Configuration file")->capture_default_str();

  auto* validate =
      app.add_subcommand("validate", "Check a configuration file and exit (0: valid, 1: errors)");
  std::string validatePath;
  validate->add_option("-c,--config", validatePath, "Configuration file (default: the top-level -c)");
  bool noResolve = false;
  validate->add_flag("--no-resolve", noResolve,
                     "Do not look up upstream host names (e.g. when checking a file for another network)");

  CLI11_PARSE(app, argc, argv);
  flowguard::filters::registerPluggedFilters();  // before any config is read

  if (validate->parsed()) {
    std::string path = validatePath.empty() ? configPath : validatePath;
    size_t warnings = 0;
    auto config = load(path, &warnings);
    if (!config) return 1;
    // As a reload and the start do: a host name that does not resolve is an error.
    bool resolved = true;
    for (const auto& cluster : config->clusters) {
      if (noResolve) break;
      try {
        flowguard::upstream::resolveHosts(cluster);
      } catch (const flowguard::upstream::HostResolutionError& e) {
        fmt::print(
            stderr, "{}\n",
            flowguard::config::ConfigError{path, cluster.location.line, cluster.location.column, e.what()}
                .str());
        resolved = false;
      }
    }
    if (!resolved) return 1;
    fmt::print("{}: ok ({} listener{}, {} cluster{}{})\n", path, config->listeners.size(),
               config->listeners.size() == 1 ? "" : "s", config->clusters.size(),
               config->clusters.size() == 1 ? "" : "s",
               warnings == 0 ? "" : fmt::format("; {} warning{} above", warnings, warnings == 1 ? "" : "s"));
    return 0;
  }

  auto config = load(configPath);
  if (!config) return 1;
  flowguard::gateway::Gateway gateway(config);
  return gateway.run();
}
