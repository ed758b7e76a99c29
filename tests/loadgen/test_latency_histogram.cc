// The loadgen's HdrHistogram-style histogram, plus the small pure pieces of the loadgen
// (URL parsing, the original config.json, key distributions, request bytes).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "loadgen/key_picker.h"
#include "loadgen/latency_histogram.h"
#include "loadgen/options.h"
#include "loadgen/request_builder.h"

using flowguard::loadgen::LatencyHistogram;
namespace lg = flowguard::loadgen;

TEST_CASE("values below 2048 us are exact, larger ones within 1/1024") {
  LatencyHistogram h;
  for (uint64_t v : {1ULL, 2ULL, 1000ULL, 2047ULL}) {
    CHECK(LatencyHistogram::lowestEquivalent(v) == v);
    CHECK(LatencyHistogram::highestEquivalent(v) == v);
  }
  CHECK(LatencyHistogram::lowestEquivalent(2048) == 2048);
  CHECK(LatencyHistogram::highestEquivalent(2048) == 2049);
  CHECK(LatencyHistogram::lowestEquivalent(10007) == 10000);  // width 8 at 2^13..2^14
  CHECK(LatencyHistogram::highestEquivalent(10007) == 10007);
  for (uint64_t v = 1; v < LatencyHistogram::kHighest; v = v * 3 + 7) {
    uint64_t lo = LatencyHistogram::lowestEquivalent(v);
    uint64_t hi = LatencyHistogram::highestEquivalent(v);
    CHECK(lo <= v);
    CHECK(v <= hi);
    CHECK(static_cast<double>(hi - lo) <= static_cast<double>(v) / 1000.0 + 1e-9);  // 3 significant digits
  }
}

TEST_CASE("percentiles of a known distribution") {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.record(v);
  CHECK(h.count() == 100000);
  CHECK(h.min() == 1);
  CHECK(h.max() == 100000);
  CHECK(h.mean() == doctest::Approx(50000.5));
  // p = the smallest value with p % of the counts at or below it, reported at the top of
  // its bucket (never below, at most 0.1 % above the exact answer).
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    auto exact = static_cast<uint64_t>(std::llround(p / 100.0 * 100000));
    uint64_t got = h.valueAtPercentile(p);
    CHECK(got >= exact);
    CHECK(static_cast<double>(got) <= static_cast<double>(exact) * 1.001);
    CHECK(got == std::min<uint64_t>(LatencyHistogram::highestEquivalent(exact), h.max()));
  }
  CHECK(h.valueAtPercentile(100) == 100000);
  CHECK(h.valueAtPercentile(0) == 1);
}

TEST_CASE("HdrHistogram's reference case: 10000 x 1 ms and one 100 s stall") {
  LatencyHistogram h;
  h.recordCount(1000, 10000);
  h.record(100'000'000);
  CHECK(h.count() == 10001);
  CHECK(h.valueAtPercentile(50) == 1000);
  CHECK(h.valueAtPercentile(99.99) == 1000);
  CHECK(h.valueAtPercentile(99.999) == 100'000'000);
  CHECK(h.max() == 100'000'000);
  CHECK(h.countAtValue(1000) == 10000);
}

TEST_CASE("out-of-range values are clamped, never lost") {
  LatencyHistogram h;
  h.record(0);
  h.record(LatencyHistogram::kHighest * 10);
  CHECK(h.count() == 2);
  CHECK(h.min() == 1);
  CHECK(h.max() == LatencyHistogram::kHighest);
  CHECK(h.valueAtPercentile(100) == LatencyHistogram::kHighest);
}

TEST_CASE("merge adds counts; subtract leaves what was recorded in between") {
  LatencyHistogram a;
  LatencyHistogram b;
  for (int i = 0; i < 100; ++i) a.record(100);
  for (int i = 0; i < 300; ++i) b.record(5000);
  LatencyHistogram merged = a;
  merged.merge(b);
  CHECK(merged.count() == 400);
  CHECK(merged.min() == 100);
  CHECK(merged.max() == 5000);
  CHECK(merged.valueAtPercentile(25) == 100);
  CHECK(merged.valueAtPercentile(26) == 5000);  // the top bucket's answer is capped at the exact max

  LatencyHistogram later = merged;
  for (int i = 0; i < 10; ++i) later.record(70000);
  LatencyHistogram interval = later;
  interval.subtract(merged);
  CHECK(interval.count() == 10);
  CHECK(interval.valueAtPercentile(50) == LatencyHistogram::highestEquivalent(70000));
  CHECK(interval.min() == LatencyHistogram::lowestEquivalent(70000));

  LatencyHistogram empty;
  CHECK(empty.valueAtPercentile(99) == 0);
  CHECK(empty.max() == 0);
  CHECK(empty.min() == 0);
  a.reset();
  CHECK(a.count() == 0);
  CHECK(a.countAtValue(100) == 0);
}

TEST_CASE("URLs") {
  lg::TargetUrl t = lg::parseUrl("http://127.0.0.1:8080/proxy?x=1");
  CHECK(t.host == "127.0.0.1");
  CHECK(t.port == 8080);
  CHECK(t.path == "/proxy?x=1");
  CHECK(t.hostHeader == "127.0.0.1:8080");
  t = lg::parseUrl("http://example.com");
  CHECK(t.port == 80);
  CHECK(t.path == "/");
  t = lg::parseUrl("http://[::1]:9000/a");
  CHECK(t.host == "::1");
  CHECK(t.port == 9000);
  CHECK_THROWS(lg::parseUrl("https://example.com/"));
  CHECK_THROWS(lg::parseUrl("ftp://x/"));
  CHECK_THROWS(lg::parseUrl("http://x:99999/"));
  CHECK_THROWS(lg::parseUrl("http://:80/"));
}

TEST_CASE("the original config.json") {
  std::string path = "/tmp/flowguard-loadgen-unit-config.json";
  {
    std::ofstream out(path);
    out << R"({"tries": 42, "api_key": "abc", "proxy_url": "http://127.0.0.1:1/p"})";
  }
  lg::Options o;
  lg::applyLegacyConfig(path, o);
  CHECK(o.requests == 42u);
  CHECK(o.url == "http://127.0.0.1:1/p");
  REQUIRE(o.keys.size() == 1);
  CHECK(o.keys[0] == "abc");
  {
    std::ofstream out(path);
    out << "{not json";
  }
  CHECK_THROWS(lg::applyLegacyConfig(path, o));
  std::remove(path.c_str());
}

TEST_CASE("key distributions") {
  lg::KeyPicker rr(lg::KeyDist::RoundRobin, 1, 3, 1, 1);
  CHECK(rr.next() == 1);
  CHECK(rr.next() == 2);
  CHECK(rr.next() == 0);
  lg::KeyPicker none(lg::KeyDist::Uniform, 1, 0, 1);
  CHECK(none.next() == -1);

  std::map<int, int> uniform;
  lg::KeyPicker u(lg::KeyDist::Uniform, 1, 4, 7);
  for (int i = 0; i < 40000; ++i) ++uniform[u.next()];
  CHECK(uniform.size() == 4);
  for (auto& [k, n] : uniform) CHECK(n == doctest::Approx(10000).epsilon(0.05));

  // Zipf with S = 1 over 10 keys: P(key 0) = 1 / H(10) = 0.3414, P(key 1) = half of it.
  std::map<int, int> zipf;
  lg::KeyPicker z(lg::KeyDist::Zipf, 1.0, 10, 7);
  for (int i = 0; i < 100000; ++i) ++zipf[z.next()];
  CHECK(zipf[0] == doctest::Approx(34142).epsilon(0.03));
  CHECK(zipf[1] == doctest::Approx(17071).epsilon(0.04));
  CHECK(zipf[9] == doctest::Approx(3414).epsilon(0.1));
}

TEST_CASE("request bytes") {
  lg::Options o;
  o.target = lg::parseUrl("http://h:81/x");
  o.method = "POST";
  o.body = "hello";
  o.headers = {"X-A: 1"};
  o.keys = {"k1", "k2"};
  auto requests = lg::buildRequests(o);
  REQUIRE(requests.size() == 2);
  CHECK(requests[1] ==
        "POST /x HTTP/1.1\r\nHost: h:81\r\nX-A: 1\r\nX-API-Key: k2\r\nContent-Length: 5\r\n\r\nhello");
  o.method = "GET";
  o.body.clear();
  o.keys.clear();
  o.headers = {"Host: other"};
  CHECK(lg::buildRequests(o) == std::vector<std::string>{"GET /x HTTP/1.1\r\nHost: other\r\n\r\n"});
}
