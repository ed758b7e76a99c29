// YAML binding of the auth filter: where the key is read, static keys, exempt routes.
#include <fmt/format.h>

#include <map>

#include "config/filter_parsers.h"
#include "config/units.h"
#include "core/http_message.h"

namespace flowguard::config {
namespace {

// The name must survive a round trip through a request head unchanged.
void parseHeader(YamlReader& r, const YAML::Node& node, AuthConfig& auth) {
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
        RateLimitSpec spec;
        if (parseRateLimitSpec(r, *limit, RateLimitAlgorithm::TokenBucket, spec)) apiKey.limit = spec;
      }
    }
    return apiKey;
  }
};

}  // namespace

FilterSettings parseAuthFilter(const YAML::Node& node, FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  AuthConfig auth;
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
        auth.exempt.push_back(parseRouteMatch(item, r, "'exempt' entry", "exempt entry"));
      }
    }
  }
  return auth;
}

}  // namespace flowguard::config
