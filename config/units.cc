#include "config/units.h"

#include <cctype>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace flowguard::config {
namespace {

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// Splits "123unit" into its number and unit; false when there is no leading digit.
bool splitNumber(std::string_view text, uint64_t& number, std::string_view& unit, bool& overflow) {
  size_t digits = 0;
  while (digits < text.size() && isDigit(text[digits])) ++digits;
  if (digits == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, number);
  overflow = ec == std::errc::result_out_of_range;
  unit = text.substr(digits);
  return true;
}

bool multiply(uint64_t a, uint64_t b, uint64_t limit, uint64_t& out) {
  if (b != 0 && a > limit / b) return false;
  out = a * b;
  return true;
}

}  // namespace

bool parseDuration(std::string_view text, Duration& out, std::string& reason) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 4> kUnits{
      {{"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}}};
  if (!text.empty() && text[0] == '-') {
    reason = "must not be negative";
    return false;
  }
  uint64_t number = 0;
  std::string_view unit;
  bool overflow = false;
  if (!splitNumber(text, number, unit, overflow)) {
    reason = "expected a whole number with a unit (ms, s, m or h), e.g. 10s";
    return false;
  }
  if (unit.empty()) {
    reason = "duration needs a unit, e.g. 10s";
    return false;
  }
  if (unit[0] == '.') {
    reason = "expected a whole number; use a smaller unit instead of a fraction, e.g. 1500ms";
    return false;
  }
  for (const auto& [name, factor] : kUnits) {
    if (unit != name) continue;
    uint64_t millis = 0;
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max());
    if (overflow || !multiply(number, factor, kMax, millis)) {
      reason = "too large";
      return false;
    }
    out = Duration{static_cast<Duration::rep>(millis)};
    return true;
  }
  reason = fmt::format("unknown unit '{}' (use ms, s, m or h)", unit);
  return false;
}

bool parseSize(std::string_view text, uint64_t& out, std::string& reason) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 7> kUnits{{{"B", 1},
                                                                                {"KB", 1'000},
                                                                                {"KiB", 1ull << 10},
                                                                                {"MB", 1'000'000},
                                                                                {"MiB", 1ull << 20},
                                                                                {"GB", 1'000'000'000},
                                                                                {"GiB", 1ull << 30}}};
  if (!text.empty() && text[0] == '-') {
    reason = "must not be negative";
    return false;
  }
  uint64_t number = 0;
  std::string_view unit;
  bool overflow = false;
  if (!splitNumber(text, number, unit, overflow)) {
    reason = "expected a whole number of bytes, optionally with a unit (B, KB, KiB, MB, MiB, GB, GiB)";
    return false;
  }
  if (unit.empty()) unit = "B";
  for (const auto& [name, factor] : kUnits) {
    if (unit != name) continue;
    if (overflow || !multiply(number, factor, std::numeric_limits<uint64_t>::max(), out)) {
      reason = "too large";
      return false;
    }
    return true;
  }
  reason = fmt::format("unknown unit '{}' (use B, KB, KiB, MB, MiB, GB or GiB)", unit);
  return false;
}

bool parseRate(std::string_view text, uint64_t& requests, Duration& period, std::string& reason) {
  static constexpr std::array<std::pair<std::string_view, int64_t>, 3> kPeriods{
      {{"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}}};
  size_t slash = text.find('/');
  std::string_view count = text.substr(0, slash);
  if (slash == std::string_view::npos || count.empty() || !std::all_of(count.begin(), count.end(), isDigit)) {
    reason = "expected requests per period: N/s, N/m or N/h, e.g. 10/s";
    return false;
  }
  uint64_t number = 0;
  auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), number);
  if (ec != std::errc()) {
    reason = "too large";
    return false;
  }
  if (number == 0) {
    reason = "the number of requests must be greater than 0";
    return false;
  }
  std::string_view unit = text.substr(slash + 1);
  for (const auto& [name, millis] : kPeriods) {
    if (unit != name) continue;
    requests = number;
    period = Duration{millis};
    return true;
  }
  reason = fmt::format("unknown period '{}' (use s, m or h, e.g. 10/s)", unit);
  return false;
}

namespace {

// RFC 1123 host name: dot-separated labels of letters, digits and '-', none empty, none
// starting or ending with '-', at most 63 characters each and 253 in all.
bool validHostName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

bool parseSocketAddress(std::string_view text, SocketAddress& out, std::string& reason, HostKind kind) {
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      reason = "missing ']' after the IPv6 host";
      return false;
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest[0] != ':') {
      reason = "expected host:port, e.g. [::1]:8000";
      return false;
    }
    port = rest.substr(1);
    bracketed = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      reason = "no port; expected host:port, e.g. 127.0.0.1:8000";
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      reason = "an IPv6 host needs brackets, e.g. [::1]:8000";
      return false;
    }
  }
  if (port.empty()) {
    reason = "no port; expected host:port, e.g. 127.0.0.1:8000";
    return false;
  }
  uint64_t portNumber = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), portNumber);
  if (ec == std::errc::invalid_argument || ptr != port.data() + port.size()) {
    reason = fmt::format("port '{}' is not a number", port);
    return false;
  }
  if (ec == std::errc::result_out_of_range || portNumber < 1 || portNumber > 65535) {
    reason = fmt::format("port {} out of range 1..65535", port);
    return false;
  }
  std::string hostString(host);
  unsigned char scratch[16];
  const bool literal =
      bracketed ? inet_pton(AF_INET6, hostString.c_str(), scratch) == 1
                : hostString == "localhost" || inet_pton(AF_INET, hostString.c_str(), scratch) == 1;
  // Four dotted numbers are meant as an IPv4 address even when it is a bad one (1.2.3.999).
  const bool looksNumeric =
      !hostString.empty() && hostString.find_first_not_of("0123456789.") == std::string::npos;
  const bool name =
      !bracketed && kind == HostKind::NameOrLiteral && !looksNumeric && validHostName(hostString);
  if (!literal && !name) {
    if (bracketed) {
      reason = fmt::format("host '{}' is not an IPv6 literal", host);
    } else if (kind == HostKind::NameOrLiteral) {
      reason = fmt::format("host '{}' is neither an IPv4/IPv6 literal nor a host name", host);
    } else {
      reason = fmt::format("host '{}' is not an IPv4/IPv6 literal or 'localhost'", host);
    }
    return false;
  }
  out.host = std::move(hostString);
  out.port = static_cast<uint16_t>(portNumber);
  return true;
}

bool parseInteger(std::string_view text, int64_t& out, std::string& reason) {
  // from_chars takes '-' but not '+', and stops at the first non-digit; demand it consumed all.
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != text.data() + text.size()) {
    reason = "not an integer";
    return false;
  }
  if (ec == std::errc::result_out_of_range) {
    reason = "out of range";
    return false;
  }
  return true;
}

}  // namespace flowguard::config
