#include "filters/server_timing/server_timing.h"

#include <fmt/format.h>

#include <chrono>

namespace flowguard::filters::server_timing {

namespace {

class Filter : public core::Filter {
 public:
  Filter(const Settings& settings, core::StatSet& stats) : settings_(settings), stats_(stats) {}

  core::FilterStatus onResponseHeaders(core::ResponseHead& head, bool) override {
    const auto elapsed = std::chrono::steady_clock::now() - callbacks().streamInfo().start;
    const double ms = std::chrono::duration<double, std::milli>(elapsed).count();
    std::string entry = fmt::format("{};dur={:.1f}", settings_.metric, ms);
    if (!settings_.description.empty()) entry += fmt::format(";desc=\"{}\"", settings_.description);
    head.headers.add("Server-Timing", entry);  // after any the upstream sent: the list grows
    stats_.add(Stat::ResponsesTimed);
    return core::FilterStatus::Continue;
  }

 private:
  const Settings& settings_;
  core::StatSet& stats_;
};

}  // namespace

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx) {
  config::YamlReader& r = ctx.reader;
  auto settings = std::make_shared<Settings>();
  r.checkKeys(node, "in server_timing filter", {"name", "metric", "description"});
  if (auto metric = config::YamlReader::find(node, "metric")) {
    if (auto text = r.string(*metric, "metric")) {
      if (!core::isToken(*text)) {
        r.error(*metric, fmt::format("'metric' must be a token (letters, digits, -_.), got '{}'", *text));
      } else {
        settings->metric = std::move(*text);
      }
    }
  }
  if (auto description = config::YamlReader::find(node, "description")) {
    if (auto text = r.string(*description, "description")) {
      // A quoted-string's own quote and escape characters, and control characters, would
      // need escaping; a description has no use for them.
      bool plain = true;
      for (unsigned char c : *text) plain = plain && c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
      if (!plain) {
        r.error(*description, "'description' must be printable text without '\"' or '\\'");
      } else {
        settings->description = std::move(*text);
      }
    }
  }
  return settings;
}

nlohmann::json dump(const Settings& settings) {
  return {{"metric", settings.metric}, {"description", settings.description}};
}

std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context) {
  return std::make_unique<FilterFactoryOf<Filter, Settings>>(settings, context);
}

}  // namespace flowguard::filters::server_timing
