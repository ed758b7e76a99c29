#include "filters/ip_filter/ip_filter.h"

#include <fmt/format.h>

namespace flowguard::filters::ip_filter {

namespace {

class Filter : public core::Filter {
 public:
  Filter(const Settings& settings, core::StatSet& stats) : settings_(settings), stats_(stats) {}

  core::FilterStatus onRequest() override {
    const std::string& client = callbacks().streamInfo().downstreamAddress;
    // The listener only ever settles on a parsable address; anything else is refused, not
    // waved through.
    const std::optional<core::IpAddress> address = core::IpAddress::parse(client);
    if (address && permits(settings_, *address)) {
      stats_.add(Stat::Allowed);
      return core::FilterStatus::Continue;
    }
    stats_.add(Stat::Denied);
    callbacks().sendLocalReply(403, "client address not allowed");
    return core::FilterStatus::Stop;
  }

 private:
  const Settings& settings_;
  core::StatSet& stats_;
};

nlohmann::json rangesJson(const std::vector<core::IpRange>& ranges) {
  nlohmann::json out = nlohmann::json::array();
  for (const core::IpRange& range : ranges) out.push_back(range.str());
  return out;
}

}  // namespace

bool permits(const Settings& settings, const core::IpAddress& client) {
  if (core::anyContains(settings.deny, client)) return false;
  return !settings.allowListed || core::anyContains(settings.allow, client);
}

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx) {
  config::YamlReader& r = ctx.reader;
  auto settings = std::make_shared<Settings>();
  r.checkKeys(node, "in ip_filter", {"name", "allow", "deny", "trusted_proxies"});
  if (auto proxies = config::YamlReader::find(node, "trusted_proxies")) {
    // One client address for the whole listener: ip_filter, rate_limit and the access log
    // must not disagree about who the client is.
    r.error(*proxies,
            "'trusted_proxies' belongs to the listener (next to 'address'), where it decides the client "
            "address for every filter and the access log; ip_filter uses that address");
  }
  std::optional<YAML::Node> allow = config::YamlReader::find(node, "allow");
  std::optional<YAML::Node> deny = config::YamlReader::find(node, "deny");
  if (!allow && !deny) {
    r.error(node, "ip_filter needs 'allow', 'deny' or both (lists of CIDR ranges, e.g. [10.0.0.0/8, ::1])");
    return nullptr;
  }
  bool ok = true;
  if (allow) {
    if (auto ranges = r.ipRanges(*allow, "allow")) {
      if (ranges->empty()) {
        r.error(*allow, "an empty 'allow' list lets no client in; list the ranges to allow, or drop 'allow'");
        ok = false;
      }
      settings->allow = std::move(*ranges);
      settings->allowListed = true;
    } else {
      ok = false;
    }
  }
  if (deny) {
    if (auto ranges = r.ipRanges(*deny, "deny")) {
      settings->deny = std::move(*ranges);
    } else {
      ok = false;
    }
  }
  return ok ? settings : nullptr;
}

nlohmann::json dump(const Settings& settings) {
  nlohmann::json out{{"deny", rangesJson(settings.deny)}};
  if (settings.allowListed) out["allow"] = rangesJson(settings.allow);
  return out;
}

std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context) {
  return std::make_unique<FilterFactoryOf<Filter, Settings>>(settings, context);
}

}  // namespace flowguard::filters::ip_filter
