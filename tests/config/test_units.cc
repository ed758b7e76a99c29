#include <doctest/doctest.h>

#include <limits>

#include "config/units.h"
#include "config/yaml_reader.h"

using namespace flowguard::config;
using namespace std::chrono_literals;

TEST_CASE("durations need a unit and a whole number") {
  Duration d{};
  std::string reason;
  CHECK(parseDuration("250ms", d, reason));
  CHECK(d == 250ms);
  CHECK(parseDuration("10s", d, reason));
  CHECK(d == 10s);
  CHECK(parseDuration("2m", d, reason));
  CHECK(d == 2min);
  CHECK(parseDuration("1h", d, reason));
  CHECK(d == 1h);
  CHECK(parseDuration("0s", d, reason));  // syntactically fine; timeouts reject it later
  CHECK(d == 0ms);

  CHECK_FALSE(parseDuration("10", d, reason));
  CHECK(reason == "duration needs a unit, e.g. 10s");
  CHECK_FALSE(parseDuration("10x", d, reason));
  CHECK(reason == "unknown unit 'x' (use ms, s, m or h)");
  CHECK_FALSE(parseDuration("10 s", d, reason));
  CHECK_FALSE(parseDuration("1.5s", d, reason));
  CHECK(reason.starts_with("expected a whole number"));
  CHECK_FALSE(parseDuration("-1s", d, reason));
  CHECK(reason == "must not be negative");
  CHECK_FALSE(parseDuration("", d, reason));
  CHECK_FALSE(parseDuration("s", d, reason));
  CHECK_FALSE(parseDuration("10S", d, reason));
  // Overflow: in the number itself and in the unit conversion.
  CHECK_FALSE(parseDuration("99999999999999999999999s", d, reason));
  CHECK(reason == "too large");
  CHECK_FALSE(parseDuration("9223372036854775807h", d, reason));
  CHECK(reason == "too large");
  CHECK(parseDuration("9223372036854775807ms", d, reason));
  CHECK(d.count() == std::numeric_limits<Duration::rep>::max());
  CHECK_FALSE(parseDuration("9223372036854775808ms", d, reason));
}

TEST_CASE("sizes are bytes with optional decimal or binary units") {
  uint64_t n = 0;
  std::string reason;
  CHECK(parseSize("0", n, reason));
  CHECK(n == 0);
  CHECK(parseSize("1234", n, reason));
  CHECK(n == 1234);
  CHECK(parseSize("7B", n, reason));
  CHECK(n == 7);
  CHECK(parseSize("2KB", n, reason));
  CHECK(n == 2000);
  CHECK(parseSize("2KiB", n, reason));
  CHECK(n == 2048);
  CHECK(parseSize("3MB", n, reason));
  CHECK(n == 3'000'000);
  CHECK(parseSize("10MiB", n, reason));
  CHECK(n == 10ull << 20);
  CHECK(parseSize("1GB", n, reason));
  CHECK(n == 1'000'000'000);
  CHECK(parseSize("4GiB", n, reason));
  CHECK(n == 4ull << 30);

  CHECK_FALSE(parseSize("10kb", n, reason));
  CHECK(reason == "unknown unit 'kb' (use B, KB, KiB, MB, MiB, GB or GiB)");
  CHECK_FALSE(parseSize("1TB", n, reason));
  CHECK_FALSE(parseSize("-1", n, reason));
  CHECK(reason == "must not be negative");
  CHECK_FALSE(parseSize("MiB", n, reason));
  CHECK_FALSE(parseSize("", n, reason));
  CHECK_FALSE(parseSize("1.5MiB", n, reason));
  CHECK(parseSize("18446744073709551615", n, reason));
  CHECK(n == std::numeric_limits<uint64_t>::max());
  CHECK_FALSE(parseSize("18446744073709551616", n, reason));
  CHECK(reason == "too large");
  CHECK_FALSE(parseSize("17179869184GiB", n, reason));  // 2^34 GiB = 2^64 bytes
  CHECK(reason == "too large");
}

TEST_CASE("socket addresses") {
  SocketAddress a;
  std::string reason;
  CHECK(parseSocketAddress("0.0.0.0:8000", a, reason));
  CHECK(a.host == "0.0.0.0");
  CHECK(a.port == 8000);
  CHECK(a.str() == "0.0.0.0:8000");
  CHECK(parseSocketAddress("[::1]:65535", a, reason));
  CHECK(a.host == "::1");
  CHECK(a.port == 65535);
  CHECK(a.str() == "[::1]:65535");
  CHECK(parseSocketAddress("localhost:1", a, reason));
  CHECK(a.host == "localhost");

  CHECK_FALSE(parseSocketAddress("127.0.0.1", a, reason));
  CHECK(reason == "no port; expected host:port, e.g. 127.0.0.1:8000");
  CHECK_FALSE(parseSocketAddress("127.0.0.1:", a, reason));
  CHECK_FALSE(parseSocketAddress("127.0.0.1:0", a, reason));
  CHECK(reason == "port 0 out of range 1..65535");
  CHECK_FALSE(parseSocketAddress("127.0.0.1:65536", a, reason));
  CHECK(reason == "port 65536 out of range 1..65535");
  CHECK_FALSE(parseSocketAddress("127.0.0.1:99999999999999999999999", a, reason));
  CHECK_FALSE(parseSocketAddress("127.0.0.1:http", a, reason));
  CHECK(reason == "port 'http' is not a number");
  CHECK_FALSE(parseSocketAddress("127.0.0.1:-5", a, reason));
  CHECK_FALSE(parseSocketAddress("example.com:80", a, reason));
  CHECK(reason == "host 'example.com' is not an IPv4/IPv6 literal or 'localhost'");
  CHECK_FALSE(parseSocketAddress("256.0.0.1:80", a, reason));
  CHECK_FALSE(parseSocketAddress("::1:80", a, reason));
  CHECK(reason == "an IPv6 host needs brackets, e.g. [::1]:8000");
  CHECK_FALSE(parseSocketAddress("[::1:80", a, reason));
  CHECK_FALSE(parseSocketAddress("[127.0.0.1]:80", a, reason));
  CHECK_FALSE(parseSocketAddress(":80", a, reason));
  // Host names only where the caller allows them (upstreams), never for addresses to bind.
  CHECK_FALSE(parseSocketAddress("backend1:9001", a, reason));
  CHECK(reason == "host 'backend1' is not an IPv4/IPv6 literal or 'localhost'");
  CHECK(parseSocketAddress("backend1:9001", a, reason, HostKind::NameOrLiteral));
  CHECK(a.host == "backend1");
  CHECK(a.port == 9001);
  CHECK(parseSocketAddress("api-2.internal.example:443", a, reason, HostKind::NameOrLiteral));
  CHECK(parseSocketAddress("10.0.0.1:80", a, reason, HostKind::NameOrLiteral));
  for (const char* bad : {"-bad:1", "bad-:1", "a..b:1", "under_score:1", "1.2.3.999:80", "sp ace:1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseSocketAddress(bad, a, reason, HostKind::NameOrLiteral));
    CHECK(reason.find("neither an IPv4/IPv6 literal nor a host name") != std::string::npos);
  }
}

TEST_CASE("integers") {
  int64_t v = 0;
  std::string reason;
  CHECK(parseInteger("-12", v, reason));
  CHECK(v == -12);
  CHECK_FALSE(parseInteger("0x10", v, reason));
  CHECK_FALSE(parseInteger("+1", v, reason));
  CHECK_FALSE(parseInteger("1 ", v, reason));
  CHECK_FALSE(parseInteger("", v, reason));
  CHECK_FALSE(parseInteger("99999999999999999999", v, reason));
  CHECK(reason == "out of range");
}

TEST_CASE("closest key suggestion stays within two edits") {
  CHECK(editDistance("adress", "address") == 1);
  CHECK(editDistance("adderss", "address") == 1);  // a swap counts once
  CHECK(editDistance("", "abc") == 3);
  std::vector<std::string_view> keys{"name", "address", "filters"};
  CHECK(closestMatch("adress", keys) == "address");
  CHECK(closestMatch("nmae", keys) == "name");
  CHECK(closestMatch("timeout", keys).empty());
}
