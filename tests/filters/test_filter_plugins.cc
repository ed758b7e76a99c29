// Plugged filters (filters/README.md): the registry, and the logic and config of the filters
// that live in folders of their own (ip_filter, server_timing). What they do to real traffic
// is tested over sockets in tests/integration/test_plugged_filters.
#include <doctest/doctest.h>

#include <string>

#include "config/config_loader.h"
#include "core/ip_range.h"
#include "filters/filter_plugin.h"
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
  CHECK(findFilterPlugin("auth") == nullptr);  // built in, not plugged
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

}  // namespace
}  // namespace flowguard::filters
