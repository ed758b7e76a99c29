// ip_filter: lets a request through by its client's address. `allow:` and `deny:` are lists
// of CIDR ranges or single addresses, IPv4 and IPv6. A request is refused (403, JSON) when
// its client is in `deny`, or when `allow` is given and the client is not in it: deny wins,
// so `allow: [10.0.0.0/8]` with `deny: [10.6.0.0/16]` lets in 10/8 but that /16.
//
// The client is the address the listener settled on: the peer, or behind the listener's
// `trusted_proxies` the rightmost X-Forwarded-For entry that is not a trusted proxy (nginx's
// real_ip_recursive, Envoy's xff_trusted_cidrs). rate_limit `by: client_ip` and the access log
// use the same address, so all three agree on who the client is.
#pragma once

#include <memory>
#include <vector>

#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/ip_range.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"

namespace flowguard::filters::ip_filter {

struct Settings : config::PluginSettingsOf<Settings> {
  std::vector<core::IpRange> allow;  // empty: no allow list (everyone not denied)
  bool allowListed = false;          // `allow:` was given
  std::vector<core::IpRange> deny;
  bool operator==(const Settings&) const = default;
};

enum class Stat { Allowed, Denied };
inline constexpr core::StatDecl kStats[] = {
    {"allowed", "Requests whose client address the ip_filter let through."},
    {"denied", "Requests refused with 403 for their client address."},
};

// The decision, apart from the filter: true when `client` may pass.
bool permits(const Settings& settings, const core::IpAddress& client);

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dump(const Settings& settings);
std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context);

}  // namespace flowguard::filters::ip_filter
