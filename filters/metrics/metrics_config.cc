// The metrics filter's settings: the access log and the per-key series cap, from YAML and
// back to JSON for /config_dump.
#include <fmt/format.h>

#include <limits>

#include "filters/metrics/metrics.h"

namespace flowguard::filters {
namespace {

using config::describeNode;
using config::YamlReader;

void parseAccessLog(YamlReader& r, const YAML::Node& node, AccessLogSettings& log) {
  if (node.IsScalar() && node.Scalar() == "off" && r.usable(node)) {
    log.enabled = false;
    return;
  }
  if (!node.IsMap()) {
    if (r.usable(node)) {
      r.error(node, fmt::format("'access_log' must be a map such as {{ path: \"-\" }} or 'off', got {}",
                                describeNode(node)));
    }
    return;
  }
  log.enabled = true;
  r.checkKeys(node, "in access_log", {"path", "sample"});
  if (auto path = YamlReader::find(node, "path")) {
    if (auto text = r.string(*path, "path")) {
      if (text->empty()) {
        r.error(*path, "'path' must not be empty (use \"-\" for stdout)");
      } else {
        log.path = std::move(*text);
      }
    }
  }
  if (auto sample = YamlReader::find(node, "sample")) {
    if (auto value = r.number(*sample, "sample")) {
      // Zero would log nothing while looking enabled; say `access_log: off` instead.
      if (*value <= 0 || *value > 1) {
        r.error(*sample,
                fmt::format("'sample' must be greater than 0 and at most 1, got {}", sample->Scalar()));
      } else {
        log.sample = *value;
      }
    }
  }
}

}  // namespace

std::shared_ptr<const MetricsSettings> parseMetrics(const YAML::Node& node, config::FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  auto metrics = std::make_shared<MetricsSettings>();
  r.checkKeys(node, "in metrics filter", {"name", "access_log", "max_key_series"});
  if (auto log = YamlReader::find(node, "access_log")) parseAccessLog(r, *log, metrics->accessLog);
  if (auto series = YamlReader::find(node, "max_key_series")) {
    // Zero is meaningful: every key counts as "other".
    if (auto value = r.integer(*series, "max_key_series", 0, std::numeric_limits<uint32_t>::max())) {
      metrics->maxKeySeries = static_cast<uint32_t>(*value);
    }
  }
  return metrics;
}

nlohmann::json dumpMetrics(const MetricsSettings& s) {
  return {{"access_log", s.accessLog.enabled
                             ? nlohmann::json{{"path", s.accessLog.path}, {"sample", s.accessLog.sample}}
                             : nlohmann::json("off")},
          {"max_key_series", s.maxKeySeries}};
}

}  // namespace flowguard::filters
