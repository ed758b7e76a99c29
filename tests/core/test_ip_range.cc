#include "core/ip_range.h"

#include <doctest/doctest.h>

using flowguard::core::IpAddress;
using flowguard::core::IpRange;

namespace {

IpRange range(std::string_view text) {
  std::string error;
  auto parsed = IpRange::parse(text, error);
  REQUIRE_MESSAGE(parsed.has_value(), error);
  return *parsed;
}

bool contains(std::string_view cidr, std::string_view address) {
  auto parsed = IpAddress::parse(address);
  REQUIRE(parsed.has_value());
  return range(cidr).contains(*parsed);
}

std::string parseError(std::string_view text) {
  std::string error;
  CHECK_FALSE(IpRange::parse(text, error).has_value());
  return error;
}

}  // namespace

TEST_CASE("addresses: IPv4, IPv6, bracketed, IPv4-mapped; anything else is not one") {
  CHECK(IpAddress::parse("192.0.2.1").has_value());
  CHECK(IpAddress::parse("2001:db8::1")->v6);
  CHECK(IpAddress::parse("[::1]")->v6);
  CHECK(*IpAddress::parse("::ffff:192.0.2.1") == *IpAddress::parse("192.0.2.1"));
  for (const char* bad :
       {"", "unknown", "192.0.2", "192.0.2.256", "1.2.3.4:80", "::1::2", "[::1", "_hidden"}) {
    CAPTURE(bad);
    CHECK_FALSE(IpAddress::parse(bad).has_value());
  }
  // inet_pton would stop at the NUL and accept the address before it.
  CHECK_FALSE(IpAddress::parse(std::string_view("10.0.0.1\0junk", 13)).has_value());
  CHECK_FALSE(IpAddress::parse(std::string_view("2001:db8::\0\0", 12)).has_value());
}

TEST_CASE("ranges: prefixes at the edges, both families") {
  CHECK(contains("10.0.0.0/8", "10.255.1.2"));
  CHECK_FALSE(contains("10.0.0.0/8", "11.0.0.0"));
  CHECK(contains("0.0.0.0/0", "203.0.113.9"));
  CHECK(contains("192.0.2.7/32", "192.0.2.7"));
  CHECK_FALSE(contains("192.0.2.7/32", "192.0.2.6"));
  CHECK(contains("192.0.2.7", "192.0.2.7"));  // one address is a /32
  CHECK(contains("192.0.2.0/25", "192.0.2.127"));
  CHECK_FALSE(contains("192.0.2.0/25", "192.0.2.128"));
  CHECK(contains("2001:db8::/32", "2001:db8:ffff::1"));
  CHECK_FALSE(contains("2001:db8::/32", "2001:db9::1"));
  CHECK(contains("::/0", "::1"));
  CHECK(contains("::1/128", "::1"));
  CHECK(contains("2001:db8::/33", "2001:db8:7fff::1"));
  CHECK_FALSE(contains("2001:db8::/33", "2001:db8:8000::1"));
  // Families never match each other, except an IPv4-mapped address, which is IPv4.
  CHECK_FALSE(contains("0.0.0.0/0", "::1"));
  CHECK_FALSE(contains("::/0", "127.0.0.1"));
  CHECK(contains("127.0.0.0/8", "::ffff:127.0.0.1"));
  CHECK(range("10.0.0.0/8").str() == "10.0.0.0/8");
  CHECK(range("2001:db8::/32").str() == "2001:db8::/32");
  // An IPv4-mapped IPv6 range is the IPv4 range it maps: its prefix counts the 96 mapping bits.
  CHECK(range("::ffff:10.1.0.0/112").str() == "10.1.0.0/16");
  CHECK(range("::ffff:10.1.2.3").str() == "10.1.2.3/32");
  CHECK(range("::ffff:0.0.0.0/96").str() == "0.0.0.0/0");
  CHECK(contains("::ffff:10.1.0.0/112", "10.1.255.255"));
  CHECK_FALSE(contains("::ffff:10.1.0.0/112", "10.2.0.0"));
}

TEST_CASE("ranges: mistakes are reported") {
  CHECK(parseError("10.0.0.0/33") == "prefix length in '10.0.0.0/33' must be 0..32");
  CHECK(parseError("::/129") == "prefix length in '::/129' must be 0..128");
  CHECK(parseError("10.0.0.0/") == "prefix length in '10.0.0.0/' must be 0..32");
  CHECK(parseError("10.0.0.0/8x") == "prefix length in '10.0.0.0/8x' must be 0..32");
  CHECK(parseError("::ffff:10.1.0.0/95") ==
        "prefix length in '::ffff:10.1.0.0/95' must be 96..128 (an IPv4-mapped IPv6 range)");
  CHECK(parseError("::ffff:10.1.0.0/129") ==
        "prefix length in '::ffff:10.1.0.0/129' must be 96..128 (an IPv4-mapped IPv6 range)");
  CHECK(parseError("::ffff:10.1.0.0/104") ==
        "'::ffff:10.1.0.0/104' has bits set after its /104 prefix (did you mean the network address?)");
  CHECK(parseError("10.1.2.3/8") ==
        "'10.1.2.3/8' has bits set after its /8 prefix (did you mean the network address?)");
  CHECK(parseError("example.com/8") ==
        "'example.com/8' is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1/128)");
}
