// cors: Cross-Origin Resource Sharing (the Fetch standard, section 3.2), for APIs that browsers
// call from pages of other origins.
//
//   - name: cors                     # before auth: preflights carry no key
//     allow_origins: ["https://app.example.com", "https://*.example.com"]   # or ["*"]
//     allow_methods: [GET, POST]     # default: GET, HEAD, POST, PUT, PATCH, DELETE
//     allow_headers: [Content-Type, X-API-Key]   # besides the CORS-safelisted ones; "*": any
//     expose_headers: [RateLimit-Remaining]
//     max_age: 10m
//     allow_credentials: false
//
// A request with an Origin the list allows gets Access-Control-Allow-Origin (the origin itself,
// or * for `allow_origins: ["*"]` without credentials) and the expose/credentials headers on its
// answer, proxied or not. A preflight (OPTIONS with Access-Control-Request-Method) is answered by
// the filter: 204 with the allowed methods, headers and max age when the origin, the method and
// every requested header are allowed; 403 JSON naming what is not, otherwise. Other requests from
// an origin not in the list go on without CORS headers, so the browser keeps their answers from
// the page. Every answer that depends on the Origin says `Vary: Origin`.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"

namespace flowguard::filters::cors {

// One entry of allow_origins: "*", an exact origin, or "scheme://*.suffix[:port]" (one or more
// labels in place of the *, never the bare suffix).
struct OriginPattern {
  std::string prefix;  // "https://" for a wildcard, the whole origin otherwise (lower case)
  std::string suffix;  // ".example.com" (with any ":port") for a wildcard, empty otherwise
  bool any = false;    // "*"
  bool wildcard = false;
  bool matches(std::string_view origin) const;
  std::string str() const;
  bool operator==(const OriginPattern&) const = default;
};

// Parses an allow_origins entry; nullopt with `error` set when it is not one.
std::optional<OriginPattern> parseOriginPattern(std::string_view text, std::string& error);

struct Settings : config::PluginSettingsOf<Settings> {
  std::vector<OriginPattern> allowOrigins;
  std::vector<std::string> allowMethods{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  std::vector<std::string> allowHeaders;  // lower case
  bool anyHeader = false;                 // allow_headers: ["*"]
  std::vector<std::string> exposeHeaders;
  std::chrono::seconds maxAge{0};  // 0: no Access-Control-Max-Age (the browser's default, 5 s)
  bool allowCredentials = false;
  bool anyOrigin() const { return allowOrigins.size() == 1 && allowOrigins[0].any; }
  bool allowsOrigin(std::string_view origin) const;
  bool operator==(const Settings&) const = default;
};

enum class Stat { Preflights, PreflightsRejected, Allowed, OriginNotAllowed };
inline constexpr core::StatDecl kStats[] = {
    {"preflights", "CORS preflight requests answered with 204."},
    {"preflights_rejected",
     "CORS preflight requests refused with 403 (origin, method or header not allowed)."},
    {"allowed", "Requests from an allowed origin that got CORS headers on their answer."},
    {"origin_not_allowed", "Requests with an Origin not in allow_origins, passed on without CORS headers."},
};

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dump(const Settings& settings);
std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context);

}  // namespace flowguard::filters::cors
