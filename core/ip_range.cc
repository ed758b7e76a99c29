#include "core/ip_range.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace flowguard::core {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 45) return std::nullopt;
  // inet_pton reads up to a NUL: "10.0.0.1\0junk" must not pass as 10.0.0.1.
  const bool literalChars = std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':';
  });
  if (!literalChars) return std::nullopt;
  char buffer[46];
  text.copy(buffer, text.size());
  buffer[text.size()] = '\0';
  IpAddress address;
  if (::inet_pton(AF_INET, buffer, address.bytes.data()) == 1) return address;
  if (::inet_pton(AF_INET6, buffer, address.bytes.data()) != 1) return std::nullopt;
  static constexpr std::array<uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped.begin(), kMapped.end(), address.bytes.begin())) {
    std::copy(address.bytes.begin() + 12, address.bytes.end(), address.bytes.begin());
    std::fill(address.bytes.begin() + 4, address.bytes.end(), 0);
    return address;
  }
  address.v6 = true;
  return address;
}

std::optional<IpRange> IpRange::parse(std::string_view text, std::string& error) {
  const size_t slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) {
    error = fmt::format("'{}' is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1/128)", text);
    return std::nullopt;
  }
  const int maxBits = address->v6 ? 128 : 32;
  // An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps, and its prefix
  // counts the 96 bits of the mapping prefix too.
  const bool mapped = !address->v6 && text.substr(0, slash).find(':') != std::string_view::npos;
  const int minWritten = mapped ? 96 : 0;
  const int maxWritten = mapped ? 128 : maxBits;
  IpRange range{*address, maxBits};
  if (slash != std::string_view::npos) {
    std::string_view bits = text.substr(slash + 1);
    int value = -1;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), value);
    if (bits.empty() || ec != std::errc() || end != bits.data() + bits.size() || value < minWritten ||
        value > maxWritten) {
      error = fmt::format("prefix length in '{}' must be {}..{}{}", text, minWritten, maxWritten,
                          mapped ? " (an IPv4-mapped IPv6 range)" : "");
      return std::nullopt;
    }
    range.prefixBits = value - minWritten;
  }
  for (int bit = range.prefixBits; bit < maxBits; ++bit) {
    if (range.base.bytes[static_cast<size_t>(bit / 8)] & (0x80 >> (bit % 8))) {
      error = fmt::format("'{}' has bits set after its /{} prefix (did you mean the network address?)", text,
                          range.prefixBits + minWritten);
      return std::nullopt;
    }
  }
  return range;
}

bool IpRange::contains(const IpAddress& address) const {
  if (address.v6 != base.v6) return false;
  int bits = prefixBits;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((address.bytes[i] & mask) != base.bytes[i]) return false;
  }
  return true;
}

std::string IpRange::str() const {
  char buffer[INET6_ADDRSTRLEN];
  ::inet_ntop(base.v6 ? AF_INET6 : AF_INET, base.bytes.data(), buffer, sizeof buffer);
  return fmt::format("{}/{}", buffer, prefixBits);
}

bool anyContains(const std::vector<IpRange>& ranges, const IpAddress& address) {
  for (const IpRange& range : ranges) {
    if (range.contains(address)) return true;
  }
  return false;
}

}  // namespace flowguard::core
