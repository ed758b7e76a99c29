// IPv4 and IPv6 address ranges in CIDR notation ("10.0.0.0/8", "2001:db8::/32", or one
// address: "127.0.0.1" = /32, "::1" = /128). Used to decide which peers are trusted proxies.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowguard::core {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4
  bool v6 = false;
  // Parses a literal ("1.2.3.4", "::1", "[::1]"); nullopt when it is not one. An IPv4-mapped
  // IPv6 address ("::ffff:1.2.3.4") is read as the IPv4 address it carries.
  static std::optional<IpAddress> parse(std::string_view text);
  bool operator==(const IpAddress&) const = default;
};

struct IpRange {
  IpAddress base;  // host bits cleared
  int prefixBits = 0;
  // "a.b.c.d/n", "v6/n" or a single address; nullopt with `error` set otherwise (including
  // host bits set past the prefix, which usually means a typo: 10.1.2.3/8).
  static std::optional<IpRange> parse(std::string_view text, std::string& error);
  bool contains(const IpAddress& address) const;
  std::string str() const;  // "10.0.0.0/8"
  bool operator==(const IpRange&) const = default;
};

bool anyContains(const std::vector<IpRange>& ranges, const IpAddress& address);

}  // namespace flowguard::core
