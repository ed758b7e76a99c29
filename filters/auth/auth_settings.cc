// The auth filter's settings: from YAML (where the key is read, static keys, exempt routes),
// back to JSON for /config_dump (keys masked), and the check of its exemptions against the
// listener's routes.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "config/units.h"
#include "core/http_message.h"
#include "filters/auth/auth.h"
#include "filters/route_match.h"
#include "filters/stored_keys.h"

namespace flowguard::filters {
namespace {

using config::YamlReader;

// The name must survive a round trip through a request head unchanged.
void parseHeader(YamlReader& r, const YAML::Node& node, AuthSettings& auth) {
  std::optional<std::string> text = r.string(node, "header");
  if (!text) return;
  if (!core::isToken(*text)) {  // a header name is a token (RFC 9110)
    r.error(node, fmt::format("'header' must be a header name such as X-API-Key, got '{}'", *text));
    return;
  }
  // Header names compare case-insensitively; the filter matches against the lower-case form.
  auth.header = core::toLowerAscii(*text);
}

// Messages never echo a key: they end up in logs and CI output.
struct KeyChecker {
  std::map<std::string, int> names;  // name -> line first defined
  std::map<std::string, int> keys;   // secret -> line first defined

  StaticApiKey parse(YamlReader& r, const YAML::Node& node) {
    StaticApiKey apiKey;
    apiKey.location = YamlReader::location(node);
    if (!r.expectMap(node, "auth key")) return apiKey;
    r.checkKeys(node, "in auth key", {"key", "name", "plan", "limit"});
    if (auto key = r.require(node, "key", "in auth key")) {
      if (auto text = r.string(*key, "key")) {
        bool visible =
            std::all_of(text->begin(), text->end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
        if (text->empty()) {
          r.error(*key, "'key' must not be empty");
        } else if (!visible) {
          // It is compared with a header value, which cannot carry the others intact.
          r.error(*key,
                  "'key' must be visible ASCII characters (no spaces, control or non-ASCII characters)");
        } else if (auto [it, inserted] = keys.emplace(*text, apiKey.location.line); !inserted) {
          r.error(*key,
                  fmt::format("duplicate auth key value (the key at line {} has the same one)", it->second));
        }
        apiKey.key = std::move(*text);
      }
    }
    if (auto name = r.require(node, "name", "in auth key")) {
      if (auto text = r.string(*name, "name")) {
        if (text->empty()) {
          r.error(*name, "'name' must not be empty");
        } else if (auto [it, inserted] = names.emplace(*text, apiKey.location.line); !inserted) {
          r.error(*name,
                  fmt::format("duplicate auth key name '{}' (first defined at line {})", *text, it->second));
        }
        apiKey.name = std::move(*text);
      }
    }
    if (auto plan = YamlReader::find(node, "plan")) {
      if (auto text = r.string(*plan, "plan")) apiKey.plan = std::move(*text);
    }
    if (auto limit = YamlReader::find(node, "limit")) {
      if (r.expectMap(*limit, "'limit'")) {
        r.checkKeys(*limit, "in key limit", {"algorithm", "rate", "burst", "limit", "window"});
        config::RateLimitSpec spec;
        if (config::parseRateLimitSpec(r, *limit, config::RateLimitAlgorithm::TokenBucket, spec))
          apiKey.limit = spec;
      }
    }
    return apiKey;
  }
};

// The auth filter waives the key of an exempt request only when the gateway answers it
// itself (a cluster route still needs the key), so an entry that also matches requests a
// cluster route serves does not do what it says. Found by trying, for each entry, every
// kind of request it matches: its methods (or all common ones and every method a route
// names), its path (or its prefix and every route path or prefix under it), its host (or
// none, and every host a route names).
void warnExemptionsReachingClusters(YamlReader& r, const AuthSettings& auth,
                                    const config::RouterConfig& router) {
  std::vector<std::string> allMethods{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"};
  for (const config::Route& route : router.routes) {
    for (const std::string& m : route.match.methods) {
      if (std::find(allMethods.begin(), allMethods.end(), m) == allMethods.end()) allMethods.push_back(m);
    }
  }
  for (const config::RouteMatch& entry : auth.exempt) {
    std::vector<std::string> methods = entry.methods.empty() ? allMethods : entry.methods;
    std::vector<std::string> paths;
    if (!entry.path.empty()) {
      paths.push_back(entry.path);
    } else {
      paths = {entry.prefix, entry.prefix + "x"};
      for (const config::Route& route : router.routes) {
        for (const std::string& p : {route.match.path, route.match.prefix, route.match.prefix + "x"}) {
          if (p.starts_with(entry.prefix)) paths.push_back(p);
        }
      }
    }
    std::vector<std::string> hosts{entry.host};
    if (entry.host.empty()) {
      for (const config::Route& route : router.routes) {
        if (!route.match.host.empty()) hosts.push_back(route.match.host);
      }
    }
    const config::Route* reached = nullptr;
    std::string example;
    for (const std::string& method : methods) {
      for (const std::string& path : paths) {
        for (const std::string& host : hosts) {
          const config::Route* route = nullptr;
          for (const config::Route& candidate : router.routes) {
            if (candidate.match.matches(method, path, host)) {
              route = &candidate;
              break;
            }
          }
          if (reached == nullptr && route != nullptr && !route->cluster.empty() &&
              !route->disables(kAuthName)) {
            reached = route;
            example = fmt::format("{} {}{}", method, path, host.empty() ? "" : " (Host: " + host + ")");
          }
        }
      }
    }
    if (reached == nullptr) continue;
    r.warning(entry.location,
              fmt::format("exempt entry also matches requests that the route at line {} forwards to "
                          "cluster '{}' (e.g. {}); an exemption applies only to answers the gateway "
                          "gives itself, so those still need a key. Narrow the entry (methods:, path:) "
                          "or, to forward them without a key, give that route "
                          "per_filter: {{ auth: {{ disabled: true }} }}",
                          reached->location.line, reached->cluster, example));
  }
}

}  // namespace

std::shared_ptr<const AuthSettings> parseAuth(const YAML::Node& node, config::FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  auto settings = std::make_shared<AuthSettings>();
  AuthSettings& auth = *settings;
  r.checkKeys(node, "in auth filter", {"name", "header", "allow_bearer", "strip_header", "keys", "exempt"});
  if (auto header = YamlReader::find(node, "header")) parseHeader(r, *header, auth);
  if (auto bearer = YamlReader::find(node, "allow_bearer")) {
    if (auto value = r.boolean(*bearer, "allow_bearer")) auth.allowBearer = *value;
  }
  if (auto strip = YamlReader::find(node, "strip_header")) {
    if (auto value = r.boolean(*strip, "strip_header")) auth.stripHeader = *value;
  }
  // Optional: keys may also come from the key store.
  if (auto keys = YamlReader::find(node, "keys")) {
    if (r.expectList(*keys, "'keys'")) {
      KeyChecker checker;
      for (const YAML::Node& item : *keys) auth.keys.push_back(checker.parse(r, item));
    }
  }
  if (auto exempt = YamlReader::find(node, "exempt")) {
    if (r.expectList(*exempt, "'exempt'")) {
      for (const YAML::Node& item : *exempt) {
        auth.exempt.push_back(config::parseRouteMatch(item, r, "'exempt' entry", "exempt entry"));
      }
    }
  }
  return settings;
}

nlohmann::json dumpAuth(const AuthSettings& s) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : s.keys) {
    nlohmann::json key = {{"key", "********"}, {"name", k.name}, {"plan", k.plan}};
    if (k.limit) key["limit"] = limitToJson(*k.limit);
    keys.push_back(std::move(key));
  }
  nlohmann::json exempt = nlohmann::json::array();
  for (const auto& m : s.exempt) exempt.push_back(routeMatchJson(m));
  return {{"header", s.header},
          {"allow_bearer", s.allowBearer},
          {"strip_header", s.stripHeader},
          {"keys", std::move(keys)},
          {"exempt", std::move(exempt)}};
}

void checkAuthChain(const AuthSettings& settings, const std::vector<config::FilterConfig>& chain,
                    YamlReader& r) {
  for (const config::FilterConfig& filter : chain) {
    if (const auto* router = std::get_if<config::RouterConfig>(&filter.settings)) {
      warnExemptionsReachingClusters(r, settings, *router);
    }
  }
}

const AuthSettings* authSettingsOf(const config::FilterConfig& filter) {
  const auto* plugged = std::get_if<config::PluginFilterConfig>(&filter.settings);
  return plugged != nullptr ? dynamic_cast<const AuthSettings*>(plugged->settings.get()) : nullptr;
}

std::shared_ptr<const KeySnapshot> staticKeySnapshot(const AuthSettings& settings) {
  auto snapshot = std::make_shared<KeySnapshot>();
  for (const auto& key : settings.keys) {
    auto record = std::make_shared<ApiKeyRecord>();
    record->id = "static:" + key.name;
    record->name = key.name;
    record->prefix = keyPrefix(key.key);
    record->digest = digestKey(key.key);
    record->plan = key.plan;
    record->limit = key.limit;
    snapshot->emplace(record->digest, std::move(record));
  }
  return snapshot;
}

}  // namespace flowguard::filters
