#include "filters/cors/cors.h"

#include <fmt/format.h>

#include <algorithm>

namespace flowguard::filters::cors {

namespace {

// The request headers a page may send without asking (Fetch: CORS-safelisted request-header
// names; their value rules are the browser's to apply).
bool safelisted(std::string_view name) {
  for (std::string_view n : {"accept", "accept-language", "content-language", "content-type", "range"}) {
    if (core::equalsIgnoreCase(name, n)) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

// Adds `token` to the response's Vary unless it is there already (or Vary is *).
void addVary(core::HeaderMap& headers, std::string_view token) {
  bool present = false;
  for (const core::Header& field : headers) {
    if (!core::equalsIgnoreCase(field.name, "vary")) continue;
    core::forEachListItem(field.value, [&](std::string_view item) {
      present = item == "*" || core::equalsIgnoreCase(item, token);
      return !present;
    });
    if (present) return;
  }
  headers.add("Vary", token);
}

class Filter : public core::Filter {
 public:
  Filter(const Settings& settings, core::StatSet& stats) : settings_(settings), stats_(stats) {}

  core::FilterStatus onRequest() override {
    const core::RequestHead& head = callbacks().requestHead();
    if (!head.headers.has("origin")) return core::FilterStatus::Continue;  // not a CORS request
    const std::string_view origin = head.headers.get("origin");
    originAllowed_ = settings_.allowsOrigin(origin);
    if (originAllowed_) origin_.assign(origin);
    const bool preflight = head.method == "OPTIONS" && head.headers.has("access-control-request-method");
    if (!preflight) {
      stats_.add(originAllowed_ ? Stat::Allowed : Stat::OriginNotAllowed);
      return core::FilterStatus::Continue;
    }
    if (std::string problem = preflightProblem(head); !problem.empty()) {
      stats_.add(Stat::PreflightsRejected);
      originAllowed_ = false;  // a refusal carries no Access-Control-Allow-Origin
      callbacks().sendLocalReply(403, problem);
      return core::FilterStatus::Stop;
    }
    stats_.add(Stat::Preflights);
    answeringPreflight_ = true;
    callbacks().sendLocalReply(204, "", "");
    return core::FilterStatus::Stop;
  }

  core::FilterStatus onResponseHeaders(core::ResponseHead& response, bool) override {
    if (!callbacks().requestHead().headers.has("origin")) return core::FilterStatus::Continue;
    core::HeaderMap& headers = response.headers;
    if (!settings_.anyOrigin() || settings_.allowCredentials) addVary(headers, "Origin");
    // The gateway's policy, not the upstream's, decides what the browser may read: an
    // upstream's own grant for an origin the list does not allow is taken back.
    if (!originAllowed_) {
      headers.remove("Access-Control-Allow-Origin");
      headers.remove("Access-Control-Allow-Credentials");
      return core::FilterStatus::Continue;
    }
    headers.set("Access-Control-Allow-Origin",
                settings_.anyOrigin() && !settings_.allowCredentials ? std::string_view("*") : origin_);
    if (settings_.allowCredentials) headers.set("Access-Control-Allow-Credentials", "true");
    if (answeringPreflight_) {
      const core::RequestHead& request = callbacks().requestHead();
      headers.set("Access-Control-Allow-Methods", joined(settings_.allowMethods));
      std::string_view requested = request.headers.get("access-control-request-headers");
      if (settings_.anyHeader && !requested.empty()) {
        headers.set("Access-Control-Allow-Headers", requested);
      } else if (!settings_.allowHeaders.empty()) {
        headers.set("Access-Control-Allow-Headers", joined(settings_.allowHeaders));
      }
      if (settings_.maxAge.count() > 0)
        headers.set("Access-Control-Max-Age", std::to_string(settings_.maxAge.count()));
      addVary(headers, "Access-Control-Request-Method");
      addVary(headers, "Access-Control-Request-Headers");
    } else if (!settings_.exposeHeaders.empty()) {
      headers.set("Access-Control-Expose-Headers", joined(settings_.exposeHeaders));
    }
    return core::FilterStatus::Continue;
  }

 private:
  // Empty when the preflight may be answered; else what the 403 says.
  std::string preflightProblem(const core::RequestHead& head) const {
    if (!originAllowed_) return "CORS: origin not allowed";
    const std::string_view method = head.headers.get("access-control-request-method");
    // A CORS-safelisted method needs no listing (Fetch: the browser lets it through anyway).
    const bool methodAllowed = method == "GET" || method == "HEAD" || method == "POST" ||
                               std::any_of(settings_.allowMethods.begin(), settings_.allowMethods.end(),
                                           [&](const std::string& m) { return m == method; });
    if (!methodAllowed) return fmt::format("CORS: method {} not allowed", method.substr(0, 32));
    if (settings_.anyHeader) return {};
    std::string_view refused;
    for (const core::Header& field : head.headers) {
      if (!core::equalsIgnoreCase(field.name, "access-control-request-headers")) continue;
      core::forEachListItem(field.value, [&](std::string_view name) {
        const bool allowed =
            safelisted(name) ||
            std::any_of(settings_.allowHeaders.begin(), settings_.allowHeaders.end(),
                        [&](const std::string& h) { return core::equalsIgnoreCase(h, name); });
        if (!allowed) refused = name;
        return allowed;
      });
      if (!refused.empty()) return fmt::format("CORS: request header {} not allowed", refused.substr(0, 64));
    }
    return {};
  }

  const Settings& settings_;
  core::StatSet& stats_;
  std::string origin_;  // the request's Origin, when allowed
  bool originAllowed_ = false;
  bool answeringPreflight_ = false;
};

// A list of header names or methods (tokens); `lowerCase` folds them (header names).
bool readTokens(config::YamlReader& r, const YAML::Node& node, std::string_view key, bool lowerCase,
                std::vector<std::string>& out) {
  auto items = r.stringList(node, key);
  if (!items) return false;
  out.clear();
  size_t index = 0;
  for (const std::string& item : *items) {
    if (!core::isToken(item)) {
      r.error(node[index], fmt::format("'{}' entry '{}' is not a token (letters, digits, -_.!)", key, item));
      return false;
    }
    out.push_back(lowerCase ? core::toLowerAscii(item) : item);
    ++index;
  }
  return true;
}

}  // namespace

bool OriginPattern::matches(std::string_view origin) const {
  if (any) return true;
  if (!wildcard) return core::equalsIgnoreCase(origin, prefix);
  // scheme://<one or more labels>.suffix: at least one character before the suffix's dot,
  // and no '/', '@' or ':' in what the * stands for.
  if (origin.size() <= prefix.size() + suffix.size()) return false;
  if (!core::equalsIgnoreCase(origin.substr(0, prefix.size()), prefix)) return false;
  if (!core::equalsIgnoreCase(origin.substr(origin.size() - suffix.size()), suffix)) return false;
  const std::string_view labels = origin.substr(prefix.size(), origin.size() - prefix.size() - suffix.size());
  for (char c : labels) {
    const bool hostChar =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!hostChar) return false;
  }
  return labels.front() != '.' && labels.back() != '.';
}

std::string OriginPattern::str() const {
  if (any) return "*";
  return wildcard ? prefix + "*" + suffix : prefix;
}

std::optional<OriginPattern> parseOriginPattern(std::string_view text, std::string& error) {
  OriginPattern out;
  if (text == "*") {
    out.any = true;
    return out;
  }
  if (text == "null") {
    error =
        "origin 'null' is what sandboxed frames and local files send: any page can claim it, so it is not "
        "allowed";
    return std::nullopt;
  }
  const size_t scheme = text.find("://");
  if (scheme == std::string_view::npos || scheme == 0) {
    error = fmt::format("'{}' is not an origin (scheme://host[:port], e.g. https://app.example.com)", text);
    return std::nullopt;
  }
  const std::string_view host = text.substr(scheme + 3);
  if (host.empty() || host.find_first_of("/?#@ ") != std::string_view::npos) {
    error = fmt::format("'{}' is not an origin: no path, query, user or spaces after the host", text);
    return std::nullopt;
  }
  const size_t star = host.find('*');
  if (star == std::string_view::npos) {
    out.prefix = core::toLowerAscii(text);
    return out;
  }
  if (star != 0 || host.size() < 3 || host[1] != '.' || host.find('*', 1) != std::string_view::npos) {
    error = fmt::format(
        "'{}': a wildcard may only stand for the leftmost labels, as in https://*.example.com", text);
    return std::nullopt;
  }
  out.wildcard = true;
  out.prefix = core::toLowerAscii(text.substr(0, scheme + 3));
  out.suffix = core::toLowerAscii(host.substr(1));  // ".example.com[:port]"
  return out;
}

bool Settings::allowsOrigin(std::string_view origin) const {
  return std::any_of(allowOrigins.begin(), allowOrigins.end(),
                     [&](const OriginPattern& p) { return p.matches(origin); });
}

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx) {
  config::YamlReader& r = ctx.reader;
  auto settings = std::make_shared<Settings>();
  r.checkKeys(node, "in cors filter",
              {"name", "allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age",
               "allow_credentials"});
  bool ok = true;
  std::optional<YAML::Node> originsNode = r.require(node, "allow_origins", "in cors filter");
  if (!originsNode) return nullptr;
  if (auto origins = r.stringList(*originsNode, "allow_origins")) {
    if (origins->empty()) {
      r.error(*originsNode, "'allow_origins' is empty: no origin could use the API; list them, or [\"*\"]");
      ok = false;
    }
    size_t index = 0;
    for (const std::string& text : *origins) {
      std::string error;
      if (auto pattern = parseOriginPattern(text, error)) {
        settings->allowOrigins.push_back(std::move(*pattern));
      } else {
        r.error((*originsNode)[index], error);
        ok = false;
      }
      ++index;
    }
    if (settings->allowOrigins.size() > 1 &&
        std::any_of(settings->allowOrigins.begin(), settings->allowOrigins.end(),
                    [](const OriginPattern& p) { return p.any; })) {
      r.error(*originsNode, "'*' allows every origin: it cannot be listed with others");
      ok = false;
    }
  } else {
    ok = false;
  }
  if (auto methods = config::YamlReader::find(node, "allow_methods")) {
    ok = readTokens(r, *methods, "allow_methods", false, settings->allowMethods) && ok;
  }
  if (auto headers = config::YamlReader::find(node, "allow_headers")) {
    if (headers->IsSequence() && headers->size() == 1 && (*headers)[0].IsScalar() &&
        (*headers)[0].Scalar() == "*") {
      settings->anyHeader = true;
    } else {
      ok = readTokens(r, *headers, "allow_headers", true, settings->allowHeaders) && ok;
    }
  }
  std::optional<YAML::Node> exposeNode = config::YamlReader::find(node, "expose_headers");
  if (exposeNode) ok = readTokens(r, *exposeNode, "expose_headers", false, settings->exposeHeaders) && ok;
  if (auto maxAge = config::YamlReader::find(node, "max_age")) {
    if (auto value = r.positiveDuration(*maxAge, "max_age")) {
      settings->maxAge = std::chrono::duration_cast<std::chrono::seconds>(*value);
      if (settings->maxAge.count() == 0) {
        r.error(*maxAge, "'max_age' is sent in whole seconds: give at least 1s");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  std::optional<YAML::Node> credentials = config::YamlReader::find(node, "allow_credentials");
  if (credentials) {
    if (auto value = r.boolean(*credentials, "allow_credentials")) {
      settings->allowCredentials = *value;
    } else {
      ok = false;
    }
  }
  // Fetch: with credentials, "*" means a literal name, never "any": a config relying on it
  // would not do what it says.
  if (settings->allowCredentials && settings->anyOrigin()) {
    r.error(*credentials,
            "allow_credentials: true with allow_origins [\"*\"]: browsers refuse credentials for any "
            "origin (Fetch standard); list the origins");
    ok = false;
  }
  if (settings->allowCredentials && exposeNode &&
      std::find(settings->exposeHeaders.begin(), settings->exposeHeaders.end(), "*") !=
          settings->exposeHeaders.end()) {
    r.error(*exposeNode,
            "expose_headers '*' means a header named '*' when credentials are allowed; list the headers");
    ok = false;
  }
  return ok ? settings : nullptr;
}

nlohmann::json dump(const Settings& settings) {
  nlohmann::json origins = nlohmann::json::array();
  for (const OriginPattern& p : settings.allowOrigins) origins.push_back(p.str());
  nlohmann::json headers =
      settings.anyHeader ? nlohmann::json::array({"*"}) : nlohmann::json(settings.allowHeaders);
  return {{"allow_origins", std::move(origins)},  {"allow_methods", settings.allowMethods},
          {"allow_headers", std::move(headers)},  {"expose_headers", settings.exposeHeaders},
          {"max_age_s", settings.maxAge.count()}, {"allow_credentials", settings.allowCredentials}};
}

std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context) {
  return std::make_unique<FilterFactoryOf<Filter, Settings>>(settings, context);
}

}  // namespace flowguard::filters::cors
