// server_timing: adds `Server-Timing: <metric>;dur=<ms>` to every response, the time from the
// request's head to the response's head as the gateway saw it (W3C Server Timing), so a
// browser's developer tools show how long the gateway and the upstream took. The example of
// filters/README.md: a whole filter, in its own folder, that nothing outside it names.
#pragma once

#include <memory>
#include <string>

#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"

namespace flowguard::filters::server_timing {

// Its settings, as parsed from flowguard.yaml.
struct Settings : config::PluginSettingsOf<Settings> {
  std::string metric = "flowguard";  // the metric's name in the header (an RFC 9110 token)
  std::string description;           // `desc=` when not empty
  bool operator==(const Settings&) const = default;
};

// Its counters, declared once: the enum indexes the table.
enum class Stat { ResponsesTimed };
inline constexpr core::StatDecl kStats[] = {
    {"responses_timed", "Responses that got a Server-Timing entry."},
};

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dump(const Settings& settings);
std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context);

}  // namespace flowguard::filters::server_timing
