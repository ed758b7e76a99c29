// Plugged filters (filters/README.md): the registry, and the logic and config of the filters
// that live in folders of their own (ip_filter, server_timing). What they do to real traffic
// is tested over sockets in tests/integration/test_plugged_filters.
#include <doctest/doctest.h>

#include <string>

#include "config/config_loader.h"
#include "core/ip_range.h"
#include "filters/buffer/buffer.h"
#include "filters/cors/cors.h"
#include "filters/filter_plugin.h"
#include "filters/headers/headers.h"
#include "filters/ip_filter/ip_filter.h"
#include "filters/server_timing/server_timing.h"

namespace flowguard::filters {
namespace plugged {
void register_ip_filter();  // filters/ip_filter/register.cc
}  // namespace plugged
namespace {

// A listener whose chain is `filters` (flow mappings, one per line) and a router.
std::string chain(const std::string& filters) {
  return "listeners:\n"
         "  - name: l\n"
         "    address: 127.0.0.1:8080\n"
         "    filters:\n" +
         filters +
         "      - name: router\n"
         "        routes: [{ match: { prefix: / }, direct_response: { status: 200 } }]\n";
}

config::LoadResult load(const std::string& filters) {
  registerPluggedFilters();
  return config::loadConfigText(chain(filters), "t.yaml");
}

std::string onlyError(const std::string& filters) {
  config::LoadResult result = load(filters);
  REQUIRE_MESSAGE(result.errors.size() == 1, result.errors.size(), " errors");
  return result.errors[0].str();
}

template <class Settings>
const Settings& settingsOf(const config::LoadResult& result, size_t index = 0) {
  REQUIRE_MESSAGE(result.ok(), (result.errors.empty() ? "" : result.errors[0].str()));
  const auto& entry = result.config->listeners[0].filters[index];
  const auto* plugged = std::get_if<config::PluginFilterConfig>(&entry.settings);
  REQUIRE(plugged != nullptr);
  const auto* settings = dynamic_cast<const Settings*>(plugged->settings.get());
  REQUIRE(settings != nullptr);
  return *settings;
}

core::IpAddress ip(const std::string& text) {
  auto address = core::IpAddress::parse(text);
  REQUIRE_MESSAGE(address.has_value(), text);
  return *address;
}

ip_filter::Settings ipSettings(const std::string& filter) {
  return settingsOf<ip_filter::Settings>(load("      - " + filter + "\n"));
}

TEST_CASE("registration: each folder under filters/ is known by name, once") {
  registerPluggedFilters();
  registerPluggedFilters();  // a second call registers nothing twice (it would throw)
  REQUIRE(findFilterPlugin("ip_filter") != nullptr);
  REQUIRE(findFilterPlugin("server_timing") != nullptr);
  CHECK(findFilterPlugin("ip_filter")->stats.size() == 2);
  CHECK(findFilterPlugin("auth") != nullptr);    // the former built-ins have folders too
  CHECK(findFilterPlugin("router") == nullptr);  // the one config/ types: the routes are the listener's
  CHECK(findFilterPlugin("nope") == nullptr);
  CHECK(config::findFilterParser("ip_filter") != nullptr);
  CHECK_THROWS_AS(plugged::register_ip_filter(), std::logic_error);
  // An unknown name is told the plugged filters too, with the closest one.
  CHECK(onlyError("      - { name: ip_filtr, allow: [10.0.0.0/8] }\n") ==
        "t.yaml:5:17: unknown filter 'ip_filtr' (did you mean 'ip_filter'?)");
}

TEST_CASE("ip_filter: deny wins over allow; no allow list lets in everyone not denied") {
  ip_filter::Settings s = ipSettings("{ name: ip_filter, allow: [10.0.0.0/8], deny: [10.6.0.0/16] }");
  CHECK(ip_filter::permits(s, ip("10.0.0.1")));
  CHECK(ip_filter::permits(s, ip("10.255.255.255")));
  CHECK_FALSE(ip_filter::permits(s, ip("10.6.0.0")));
  CHECK_FALSE(ip_filter::permits(s, ip("10.6.255.255")));
  CHECK(ip_filter::permits(s, ip("10.7.0.0")));
  CHECK_FALSE(ip_filter::permits(s, ip("11.0.0.0")));
  CHECK_FALSE(ip_filter::permits(s, ip("9.255.255.255")));
  CHECK_FALSE(ip_filter::permits(s, ip("::1")));  // an IPv6 client is not in an IPv4 range

  ip_filter::Settings denyOnly = ipSettings("{ name: ip_filter, deny: [192.0.2.7] }");
  CHECK_FALSE(ip_filter::permits(denyOnly, ip("192.0.2.7")));
  CHECK(ip_filter::permits(denyOnly, ip("192.0.2.6")));
  CHECK(ip_filter::permits(denyOnly, ip("192.0.2.8")));
  CHECK(ip_filter::permits(denyOnly, ip("2001:db8::1")));
}

TEST_CASE("ip_filter: prefix edges /0, /32, /128, odd prefixes and IPv4-mapped IPv6") {
  ip_filter::Settings all4 = ipSettings("{ name: ip_filter, allow: [0.0.0.0/0] }");
  CHECK(ip_filter::permits(all4, ip("0.0.0.0")));
  CHECK(ip_filter::permits(all4, ip("255.255.255.255")));
  CHECK_FALSE(ip_filter::permits(all4, ip("::")));  // /0 of one family is not the other

  ip_filter::Settings all6 = ipSettings("{ name: ip_filter, allow: [\"::/0\"] }");
  CHECK(ip_filter::permits(all6, ip("::")));
  CHECK(ip_filter::permits(all6, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(ip_filter::permits(all6, ip("1.2.3.4")));

  ip_filter::Settings one = ipSettings("{ name: ip_filter, allow: [203.0.113.9/32, \"2001:db8::9/128\"] }");
  CHECK(ip_filter::permits(one, ip("203.0.113.9")));
  CHECK_FALSE(ip_filter::permits(one, ip("203.0.113.8")));
  CHECK_FALSE(ip_filter::permits(one, ip("203.0.113.10")));
  CHECK(ip_filter::permits(one, ip("2001:db8::9")));
  CHECK(ip_filter::permits(one, ip("[2001:db8::9]")));
  CHECK_FALSE(ip_filter::permits(one, ip("2001:db8::8")));
  CHECK_FALSE(ip_filter::permits(one, ip("2001:db8::a")));
  CHECK(ip_filter::permits(one, ip("::ffff:203.0.113.9")));  // read as the IPv4 address it carries

  // A prefix that ends inside a byte: 198.51.100.64/27 is .64 to .95.
  ip_filter::Settings odd =
      ipSettings("{ name: ip_filter, deny: [198.51.100.64/27, \"2001:db8:8000::/33\"] }");
  CHECK(ip_filter::permits(odd, ip("198.51.100.63")));
  CHECK_FALSE(ip_filter::permits(odd, ip("198.51.100.64")));
  CHECK_FALSE(ip_filter::permits(odd, ip("198.51.100.95")));
  CHECK(ip_filter::permits(odd, ip("198.51.100.96")));
  CHECK(ip_filter::permits(odd, ip("2001:db8:7fff:ffff::1")));
  CHECK_FALSE(ip_filter::permits(odd, ip("2001:db8:8000::1")));
  CHECK_FALSE(ip_filter::permits(odd, ip("2001:db8:ffff:ffff::1")));
  CHECK(ip_filter::permits(odd, ip("2001:db9::1")));
}

TEST_CASE("ip_filter: config errors point at the value, with line and column") {
  CHECK(onlyError("      - { name: ip_filter }\n") ==
        "t.yaml:5:9: ip_filter needs 'allow', 'deny' or both (lists of CIDR ranges, e.g. [10.0.0.0/8, ::1])");
  CHECK(onlyError("      - { name: ip_filter, allow: [] }\n") ==
        "t.yaml:5:35: an empty 'allow' list lets no client in; list the ranges to allow, or drop 'allow'");
  CHECK(onlyError("      - { name: ip_filter, allow: [10.1.2.3/8] }\n") ==
        "t.yaml:5:36: '10.1.2.3/8' has bits set after its /8 prefix (did you mean the network address?)");
  CHECK(onlyError("      - { name: ip_filter, deny: [10.0.0.0/8, office] }\n") ==
        "t.yaml:5:47: 'office' is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1/128)");
  CHECK(onlyError("      - { name: ip_filter, deny: 10.0.0.0/8 }\n").starts_with("t.yaml:5:34: "));
  CHECK(onlyError("      - { name: ip_filter, deny: [\"::1\"], alow: [10.0.0.0/8] }\n") ==
        "t.yaml:5:43: unknown key 'alow' in ip_filter (did you mean 'allow'?)");
  CHECK(onlyError("      - { name: ip_filter, deny: [\"::1\"], trusted_proxies: [10.0.0.0/8] }\n")
            .starts_with("t.yaml:5:60: 'trusted_proxies' belongs to the listener"));
  CHECK(onlyError(
            "      - { name: ip_filter, deny: [\"::1\"] }\n      - { name: ip_filter, deny: [\"::2\"] }\n")
            .starts_with("t.yaml:6:17: filter 'ip_filter' appears twice in this listener"));
}

TEST_CASE("plugged settings compare by value: a reload that changes nothing keeps them") {
  const std::string a = "      - { name: ip_filter, deny: [10.0.0.0/8] }\n";
  config::LoadResult first = load(a);
  config::LoadResult same = load(a);
  config::LoadResult other = load("      - { name: ip_filter, deny: [10.0.0.0/9] }\n");
  config::LoadResult allowed = load("      - { name: ip_filter, allow: [10.0.0.0/8] }\n");
  REQUIRE(first.ok());
  REQUIRE(same.ok());
  REQUIRE(other.ok());
  REQUIRE(allowed.ok());
  const auto& f = first.config->listeners[0].filters[0];
  CHECK(f == same.config->listeners[0].filters[0]);
  CHECK_FALSE(f == other.config->listeners[0].filters[0]);
  CHECK_FALSE(f == allowed.config->listeners[0].filters[0]);
  // Another filter's settings are never equal, whatever they hold.
  config::LoadResult timing = load("      - { name: server_timing }\n");
  REQUIRE(timing.ok());
  CHECK_FALSE(std::get<config::PluginFilterConfig>(f.settings) ==
              std::get<config::PluginFilterConfig>(timing.config->listeners[0].filters[0].settings));
}

TEST_CASE("server_timing: metric is a token, description printable") {
  const config::LoadResult loaded =
      load("      - { name: server_timing, metric: gw-edge, description: \"edge proxy\" }\n");
  const auto& s = settingsOf<server_timing::Settings>(loaded);
  CHECK(s.metric == "gw-edge");
  CHECK(s.description == "edge proxy");
  CHECK(server_timing::dump(s) == nlohmann::json{{"metric", "gw-edge"}, {"description", "edge proxy"}});
  const config::LoadResult defaults = load("      - { name: server_timing }\n");
  CHECK(settingsOf<server_timing::Settings>(defaults).metric == "flowguard");
  CHECK(onlyError("      - { name: server_timing, metric: \"a b\" }\n") ==
        "t.yaml:5:40: 'metric' must be a token (letters, digits, -_.), got 'a b'");
  CHECK(onlyError("      - { name: server_timing, description: \"say \\\"hi\\\"\" }\n") ==
        "t.yaml:5:45: 'description' must be printable text without '\"' or '\\'");
}

TEST_CASE("buffer: max_request_bytes is a size of at least one byte") {
  const config::LoadResult loaded = load("      - { name: buffer, max_request_bytes: 64KiB }\n");
  const auto& s = settingsOf<buffer::Settings>(loaded);
  CHECK(s.maxRequestBytes == 64 * 1024);
  CHECK(buffer::dump(s) == nlohmann::json{{"max_request_bytes", 65536}});
  CHECK(settingsOf<buffer::Settings>(load("      - { name: buffer }\n")).maxRequestBytes == 1 << 20);
  CHECK(onlyError("      - { name: buffer, max_request_bytes: 0 }\n") ==
        "t.yaml:5:44: 'max_request_bytes' must be at least 1 bytes, got 0");
  CHECK(onlyError("      - { name: buffer, max_request_bytes: lots }\n")
            .starts_with("t.yaml:5:44: invalid size 'lots' for 'max_request_bytes'"));
  CHECK(onlyError("      - { name: buffer, max_bytes: 10 }\n")
            .starts_with("t.yaml:5:25: unknown key 'max_bytes' in buffer filter"));
}

// ---- headers ------------------------------------------------------------------------------

std::string templateError(std::string_view text, bool response = false) {
  std::string error;
  auto parsed = headers::ValueTemplate::parse(text, response, error);
  CHECK_FALSE(parsed.has_value());
  return error;
}

TEST_CASE("headers: value templates render variables, %% and literals") {
  core::RequestHead request;
  request.headers.add("X-Tenant", "acme");
  core::StreamInfo info;
  info.downstreamAddress = "203.0.113.5";
  info.requestId = "rid-1";
  info.upstreamHost = "127.0.0.1:9001";
  auto render = [&](std::string_view text, bool response = true) {
    std::string error;
    auto parsed = headers::ValueTemplate::parse(text, response, error);
    REQUIRE_MESSAGE(parsed.has_value(), error);
    std::string out = "stale";
    parsed->render(request, info, out);
    return out;
  };
  CHECK(render("plain") == "plain");
  CHECK(render("") == "");
  CHECK(render("%CLIENT_IP%") == "203.0.113.5");
  CHECK(render("t=%REQ(x-tenant)%;ip=%CLIENT_IP%;id=%REQUEST_ID%") == "t=acme;ip=203.0.113.5;id=rid-1");
  CHECK(render("%REQ(X-Missing)%") == "");
  CHECK(render("100%% sure") == "100% sure");
  CHECK(render("%%CLIENT_IP%%") == "%CLIENT_IP%");
  CHECK(render("%API_KEY_NAME%") == "");  // no key on this request
  CHECK(render("%UPSTREAM_HOST%") == "127.0.0.1:9001");

  CHECK(templateError("50%") == "'%' at offset 2 opens a variable that is not closed (write %% for a '%')");
  CHECK(templateError("%NOPE%").starts_with("unknown variable '%NOPE%' (known: %REQ(name)%"));
  CHECK(templateError("%REQ()%") == "'%REQ()%' does not name a header");
  CHECK(templateError("%REQ(a b)%") == "'%REQ(a b)%' does not name a header");
  CHECK(templateError("%REQ(Authorization)%") ==
        "'%REQ(Authorization)%' would copy credentials into another header");
  CHECK(templateError("%REQ(x-api-key)%") == "'%REQ(x-api-key)%' would copy credentials into another header");
  CHECK(templateError("%UPSTREAM_HOST%") ==
        "%UPSTREAM_HOST% is known only once a host answered: use it in response headers");
  CHECK(templateError("a\r\nX-Injected: 1", true) ==
        "a header value cannot hold control characters (CR, LF, NUL...)");
  CHECK(templateError(std::string_view("a\0b", 3), true).starts_with("a header value cannot hold"));
}

TEST_CASE("headers: edits render first, then remove, set and add; empty values are not written") {
  const config::LoadResult loaded = load(
      "      - name: headers\n"
      "        request:\n"
      "          set: { X-New: \"%REQ(X-Old)%\", X-Gone: \"%REQ(X-None)%\" }\n"
      "          add: { Via: \"1.1 gw\" }\n"
      "          remove: [X-Old, x-debug]\n");
  const auto& s = settingsOf<headers::Settings>(loaded);
  CHECK(s.response.empty());
  core::RequestHead request;
  request.headers.add("X-Old", "moved");
  request.headers.add("X-Debug", "1");
  request.headers.add("X-Gone", "was here");
  request.headers.add("Via", "1.0 client-proxy");
  core::StreamInfo info;
  std::vector<std::string> values;
  s.request.apply(request.headers, request, info, values);
  CHECK(request.headers.get("x-new") == "moved");
  CHECK_FALSE(request.headers.has("x-old"));
  CHECK_FALSE(request.headers.has("x-debug"));
  CHECK_FALSE(request.headers.has("x-gone"));  // set to an empty value: removed
  CHECK(request.headers.count("via") == 2);
  CHECK(headers::dump(s).at("request").at("set").at("X-New") == "%REQ(X-Old)%");
  // Credentials the filter sends upstream are masked in /config_dump.
  const config::LoadResult secret =
      load("      - { name: headers, request: { set: { Authorization: \"Bearer upstream-secret\" } } }\n");
  CHECK(headers::dump(settingsOf<headers::Settings>(secret)).at("request").at("set").at("Authorization") ==
        "********");
}

TEST_CASE("headers: config errors (framing and hop-by-hop names, bad names, templates)") {
  CHECK(onlyError("      - { name: headers }\n") ==
        "t.yaml:5:9: headers filter needs 'request', 'response' or both (each with set, add or remove)");
  CHECK(onlyError("      - { name: headers, request: { set: { Content-Length: \"5\" } } }\n") ==
        "t.yaml:5:44: request header 'Content-Length' cannot be edited: it frames the body");
  CHECK(onlyError("      - { name: headers, response: { remove: [Transfer-Encoding] } }\n") ==
        "t.yaml:5:47: response header 'Transfer-Encoding' cannot be edited: it frames the body");
  CHECK(onlyError("      - { name: headers, request: { add: { connection: close } } }\n")
            .starts_with("t.yaml:5:44: request header 'connection' cannot be edited: it is hop-by-hop"));
  CHECK(onlyError("      - { name: headers, request: { set: { Host: evil } } }\n")
            .starts_with("t.yaml:5:44: request header 'Host' cannot be edited"));
  CHECK(onlyError("      - { name: headers, request: { set: { \"X Bad\": v } } }\n") ==
        "t.yaml:5:44: 'X Bad' is not a header name (letters, digits and !#$%&'*+-.^_`|~)");
  CHECK(onlyError("      - { name: headers, request: { set: { X-Up: \"%UPSTREAM_HOST%\" } } }\n") ==
        "t.yaml:5:50: value of 'X-Up': %UPSTREAM_HOST% is known only once a host answered: use it in "
        "response headers");
  CHECK(onlyError("      - { name: headers, request: { sett: { X: y } } }\n") ==
        "t.yaml:5:37: unknown key 'sett' in headers request (did you mean 'set'?)");
  CHECK(onlyError("      - { name: headers, response: [X] }\n").starts_with("t.yaml:5:36: "));
}

// ---- cors ---------------------------------------------------------------------------------

cors::OriginPattern origin(std::string_view text) {
  std::string error;
  auto parsed = cors::parseOriginPattern(text, error);
  REQUIRE_MESSAGE(parsed.has_value(), error);
  return *parsed;
}

std::string originError(std::string_view text) {
  std::string error;
  CHECK_FALSE(cors::parseOriginPattern(text, error).has_value());
  return error;
}

TEST_CASE("cors: origin patterns: exact, *, and leftmost-label wildcards") {
  const cors::OriginPattern exact = origin("https://App.Example.com");
  CHECK(exact.matches("https://app.example.com"));
  CHECK(exact.matches("HTTPS://APP.EXAMPLE.COM"));
  CHECK_FALSE(exact.matches("http://app.example.com"));
  CHECK_FALSE(exact.matches("https://app.example.com:8443"));
  CHECK_FALSE(exact.matches("https://app.example.com.evil.net"));
  CHECK_FALSE(exact.matches("https://app.example.co"));

  const cors::OriginPattern sub = origin("https://*.example.com");
  CHECK(sub.matches("https://a.example.com"));
  CHECK(sub.matches("https://a.b.example.com"));
  CHECK_FALSE(sub.matches("https://example.com"));  // the bare suffix is not a subdomain
  CHECK_FALSE(sub.matches("https://.example.com"));
  CHECK_FALSE(sub.matches("https://evilexample.com"));
  CHECK_FALSE(sub.matches("https://a.example.com.evil.net"));
  CHECK_FALSE(sub.matches("http://a.example.com"));
  CHECK_FALSE(sub.matches("https://a.example.com:8443"));
  CHECK_FALSE(sub.matches("https://user@a.example.com"));
  CHECK_FALSE(sub.matches("https://evil.net/.example.com"));
  CHECK(origin("https://*.example.com:8443").matches("https://a.example.com:8443"));
  CHECK(origin("*").matches("null"));
  CHECK(origin("https://*.example.com").str() == "https://*.example.com");

  CHECK(originError("null").starts_with("origin 'null' is what sandboxed frames"));
  CHECK(originError("example.com") ==
        "'example.com' is not an origin (scheme://host[:port], e.g. https://app.example.com)");
  CHECK(originError("https://example.com/") ==
        "'https://example.com/' is not an origin: no path, query, user or spaces after the host");
  CHECK(originError("https://a.*.example.com").starts_with("'https://a.*.example.com': a wildcard may only"));
  CHECK(originError("https://*example.com").starts_with("'https://*example.com': a wildcard may only"));
  CHECK(originError("https://*.*.example.com").starts_with("'https://*.*.example.com': a wildcard may only"));
}

TEST_CASE("cors: settings and the Fetch standard's rules as config errors") {
  const config::LoadResult loaded = load(
      "      - { name: cors, allow_origins: [\"https://*.example.com\"], allow_headers: [X-API-Key], "
      "max_age: 10m, allow_credentials: true }\n");
  const auto& s = settingsOf<cors::Settings>(loaded);
  CHECK(s.allowsOrigin("https://app.example.com"));
  CHECK_FALSE(s.allowsOrigin("https://app.example.org"));
  CHECK(s.allowHeaders == std::vector<std::string>{"x-api-key"});
  CHECK(s.maxAge == std::chrono::seconds(600));
  CHECK(s.allowMethods == std::vector<std::string>{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"});

  CHECK(onlyError("      - { name: cors }\n") ==
        "t.yaml:5:9: missing required key 'allow_origins' in cors filter");
  CHECK(onlyError("      - { name: cors, allow_origins: [] }\n") ==
        "t.yaml:5:38: 'allow_origins' is empty: no origin could use the API; list them, or [\"*\"]");
  CHECK(onlyError("      - { name: cors, allow_origins: [\"*\"], allow_credentials: true }\n")
            .starts_with("t.yaml:5:64: allow_credentials: true with allow_origins [\"*\"]: browsers refuse"));
  CHECK(onlyError("      - { name: cors, allow_origins: [\"*\", \"https://a.com\"] }\n") ==
        "t.yaml:5:38: '*' allows every origin: it cannot be listed with others");
  CHECK(onlyError("      - { name: cors, allow_origins: [\"https://a.com\", \"null\"] }\n")
            .starts_with("t.yaml:5:56: origin 'null'"));
  CHECK(onlyError(
            "      - { name: cors, allow_origins: [\"https://a.com\"], allow_methods: [\"GET POST\"] }\n") ==
        "t.yaml:5:73: 'allow_methods' entry 'GET POST' is not a token (letters, digits, -_.!)");
  CHECK(onlyError("      - { name: cors, allow_origins: [\"https://a.com\"], max_age: 500ms }\n") ==
        "t.yaml:5:66: 'max_age' is sent in whole seconds: give at least 1s");
  CHECK(onlyError("      - { name: cors, allow_origins: [\"https://a.com\"], allow_credentials: true, "
                  "expose_headers: [\"*\"] }\n")
            .starts_with("t.yaml:5:98: expose_headers '*' means a header named '*'"));
}

// ---- per-route settings --------------------------------------------------------------------

// A listener with `filters` and a router whose routes are `routes` (flow mappings, one per line).
config::LoadResult loadRoutes(const std::string& filters, const std::string& routes) {
  registerPluggedFilters();
  return config::loadConfigText(
      "listeners:\n"
      "  - name: l\n"
      "    address: 127.0.0.1:8080\n"
      "    filters:\n" +
          filters +
          "      - name: router\n"
          "        routes:\n" +
          routes,
      "t.yaml");
}

std::string onlyRouteError(const std::string& filters, const std::string& routes) {
  config::LoadResult result = loadRoutes(filters, routes);
  REQUIRE_MESSAGE(result.errors.size() == 1, result.errors.size(), " errors");
  return result.errors[0].str();
}

const config::Route& routeAt(const config::LoadResult& result, size_t index) {
  REQUIRE_MESSAGE(result.ok(), (result.errors.empty() ? "" : result.errors[0].str()));
  const auto& filters = result.config->listeners[0].filters;
  return std::get<config::RouterConfig>(filters.back().settings).routes.at(index);
}

const std::string kIpAndHeaders =
    "      - { name: ip_filter, allow: [10.0.0.0/8], deny: [10.6.0.0/16] }\n"
    "      - { name: headers, response: { set: { X-Which: listener } } }\n";

TEST_CASE("per_filter: a route turns a plugged filter off or replaces some of its keys") {
  const config::LoadResult loaded =
      loadRoutes(kIpAndHeaders,
                 "          - { match: { prefix: /open }, direct_response: { status: 200 }, per_filter: { "
                 "ip_filter: { disabled: true } } }\n"
                 "          - { match: { prefix: /lan }, direct_response: { status: 200 }, per_filter: { "
                 "ip_filter: { allow: [192.168.0.0/16] }, "
                 "headers: { request: { set: { X-Lan: yes } } } } }\n"
                 "          - { match: { prefix: / }, direct_response: { status: 200 } }\n");
  const config::Route& open = routeAt(loaded, 0);
  REQUIRE(open.perFilter.size() == 1);
  CHECK(open.perFilterFor("ip_filter")->disabled);
  CHECK(open.perFilterFor("ip_filter")->settings == nullptr);
  CHECK(open.perFilterFor("headers") == nullptr);

  const config::Route& lan = routeAt(loaded, 1);
  const auto* ip = dynamic_cast<const ip_filter::Settings*>(lan.perFilterFor("ip_filter")->settings.get());
  REQUIRE(ip != nullptr);
  // allow is the route's; deny, not given on the route, is the listener's.
  CHECK(ip_filter::permits(*ip, *core::IpAddress::parse("192.168.1.1")));
  CHECK_FALSE(ip_filter::permits(*ip, *core::IpAddress::parse("10.0.0.1")));
  REQUIRE(ip->deny.size() == 1);
  CHECK(ip->deny[0].str() == "10.6.0.0/16");
  const auto* edits = dynamic_cast<const headers::Settings*>(lan.perFilterFor("headers")->settings.get());
  REQUIRE(edits != nullptr);
  CHECK(edits->request.set.size() == 1);
  CHECK(edits->response.set.size() == 1);  // the listener's response edits stay
  CHECK(routeAt(loaded, 2).perFilter.empty());

  // A route's per_filter is part of what a reload compares.
  const config::LoadResult same =
      loadRoutes(kIpAndHeaders,
                 "          - { match: { prefix: /open }, direct_response: { status: 200 }, per_filter: { "
                 "ip_filter: { disabled: true } } }\n");
  const config::LoadResult other =
      loadRoutes(kIpAndHeaders,
                 "          - { match: { prefix: /open }, direct_response: { status: 200 }, per_filter: { "
                 "ip_filter: { allow: [10.0.0.0/9] } } }\n");
  CHECK(routeAt(same, 0) == routeAt(loaded, 0));
  CHECK_FALSE(routeAt(other, 0) == routeAt(loaded, 0));
}

TEST_CASE("per_filter: config errors name the route's node") {
  const std::string route =
      "          - { match: { prefix: / }, direct_response: { status: 200 }, per_filter: ";
  CHECK(
      onlyRouteError(kIpAndHeaders, route + "{ ip_filtr: { disabled: true } } }\n") ==
      "t.yaml:9:85: per_filter 'ip_filtr': this listener has no filter 'ip_filtr' before the router (did you "
      "mean 'ip_filter'?)");
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ cors: { disabled: true } } }\n") ==
        "t.yaml:9:85: per_filter 'cors': this listener has no filter 'cors' before the router (its filters: "
        "ip_filter, headers)");
  // metrics can only be turned off on a route.
  CHECK(onlyRouteError(kIpAndHeaders + "      - { name: metrics }\n",
                       "          - { match: { prefix: / }, direct_response: { status: 200 }, per_filter: "
                       "{ metrics: { max_key_series: 5 } } }\n") ==
        "t.yaml:10:96: 'max_key_series' cannot be set per route for filter 'metrics' (per route: disabled)");
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ ip_filter: { alow: [10.0.0.0/8] } } }\n") ==
        "t.yaml:9:98: 'alow' cannot be set per route for filter 'ip_filter' (per route: disabled, allow, "
        "deny); did you mean 'allow'?");
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ ip_filter: {} } }\n") ==
        "t.yaml:9:96: per_filter 'ip_filter' is empty: say 'disabled: true' or give settings for this route");
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ ip_filter: { disabled: true, allow: [10.0.0.0/8] } } }\n") ==
        "t.yaml:9:96: per_filter 'ip_filter' turns the filter off and sets it: do one or the other");
  // The filter's own checks, at the route's value.
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ ip_filter: { allow: [10.1.2.3/8] } } }\n") ==
        "t.yaml:9:106: '10.1.2.3/8' has bits set after its /8 prefix (did you mean the network address?)");
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ headers: { request: { set: { Host: x } } } } }\n")
            .starts_with("t.yaml:9:114: request header 'Host' cannot be edited"));
  CHECK(onlyRouteError(kIpAndHeaders,
                       route + "{ ip_filter: { disabled: true }, ip_filter: { allow: [10.0.0.0/9] } } }\n") ==
        "t.yaml:9:116: per_filter 'ip_filter' is given twice on this route");
  CHECK(onlyRouteError(kIpAndHeaders, route + "{ ip_filter: { disabled: maybe } } }\n") ==
        "t.yaml:9:108: 'disabled' must be true or false, got 'maybe'");
}

}  // namespace
}  // namespace flowguard::filters
