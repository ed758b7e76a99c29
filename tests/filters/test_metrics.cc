// Metrics arithmetic: histogram buckets and percentiles, counters from a known sequence.
#include "filters/metrics/metrics.h"

#include <doctest/doctest.h>

#include <memory>

using namespace flowguard;
using filters::LatencyHistogram;

TEST_CASE("histogram buckets are log-linear and their bounds contain the value") {
  for (uint64_t v : {0ull, 1ull, 7ull, 8ull, 9ull, 15ull, 16ull, 100ull, 1000ull, 12345ull, 999999ull,
                     (1ull << 40) + 12345}) {
    int bucket = LatencyHistogram::bucketOf(v);
    CAPTURE(v);
    CHECK(LatencyHistogram::upperBound(bucket) >= v);
    if (bucket > 0) CHECK(LatencyHistogram::upperBound(bucket - 1) < v);
    // Relative error of the bound stays within one sub-bucket (12.5 %).
    if (v >= 8)
      CHECK(static_cast<double>(LatencyHistogram::upperBound(bucket)) <= static_cast<double>(v) * 1.125 + 1);
  }
  CHECK(LatencyHistogram::bucketOf(UINT64_MAX) == LatencyHistogram::kBuckets - 1);
}

TEST_CASE("percentiles read from a histogram of 1..1000 microseconds") {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1000; ++v) h.record(v);
  CHECK(h.count() == 1000);
  auto near = [](uint64_t got, double want) { return got >= want && got <= want * 1.125 + 1; };
  CHECK(near(h.percentile(0.5), 500));
  CHECK(near(h.percentile(0.9), 900));
  CHECK(near(h.percentile(0.99), 990));
  CHECK(near(h.percentile(0.999), 999));
  CHECK(LatencyHistogram().percentile(0.5) == 0);
}

namespace {

core::StreamInfo info(int status, const char* key, const char* upstream, bool local = false) {
  core::StreamInfo i;
  i.responseStatus = status;
  if (key != nullptr) {
    auto k = std::make_shared<core::AuthenticatedKey>();
    k->name = key;
    k->id = std::string("static:") + key;
    i.apiKey = k;
  }
  i.upstreamHost = upstream;
  if (local) i.localReplyReason = "local";
  i.requestBodyBytes = 10;
  i.responseBodyBytes = 100;
  return i;
}

}  // namespace

TEST_CASE("shards count a known sequence, summed over workers, with per-key series bounded") {
  filters::MetricsRegistry registry(1);  // one key series per worker, the rest is "other"
  int workerA = 0, workerB = 0;
  filters::MetricsShard& a = registry.shardFor(&workerA);
  filters::MetricsShard& b = registry.shardFor(&workerB);
  CHECK(&registry.shardFor(&workerA) == &a);  // a reload's factory on the same worker: same shard
  a.record(info(200, "k1", "h:1"), 100);
  a.record(info(201, "k1", "h:1"), 200);
  b.record(info(429, "k2", "", true), 50);
  b.record(info(503, "k3", "h:2"), 5000);  // third key: goes to "other"
  a.record(info(404, nullptr, "", true), 10);
  auto s = registry.snapshot();
  CHECK(s.total.requests == 5);
  CHECK(s.total.status2xx == 2);
  CHECK(s.total.status4xx == 2);
  CHECK(s.total.status429 == 1);
  CHECK(s.total.status5xx == 1);
  CHECK(s.total.localReplies == 2);
  CHECK(s.total.bytesIn == 50);
  CHECK(s.total.bytesOut == 500);
  // Shard a keeps k1 (anonymous goes to other); shard b keeps k2 (k3 goes to other).
  CHECK(s.byKey["static:k1"].requests == 2);
  CHECK(s.byKey["static:k2"].status429 == 1);
  CHECK(s.byKey["other"].requests == 2);
  CHECK(s.byKey["other"].status5xx == 1);
  CHECK(s.byKey.count("static:k3") == 0);
  CHECK(s.byKey.count("anonymous") == 0);
  CHECK(s.byUpstream["h:1"].requests == 2);
  CHECK(s.byUpstream["h:2"].status5xx == 1);
  CHECK(s.latencyPercentileUs(1.0) >= 5000);
}

TEST_CASE("series per route, cluster and local-reply reason") {
  filters::MetricsRegistry registry(10);
  int worker = 0;
  filters::MetricsShard& shard = registry.shardFor(&worker);
  core::StreamInfo proxied = info(200, "k1", "h:1");
  proxied.routeName = "prefix /api";
  proxied.clusterName = "backends";
  shard.record(proxied, 100);
  shard.record(proxied, 100);
  core::StreamInfo limited = info(429, "k1", "", true);
  limited.localReplyReason = "rate limit exceeded";
  shard.record(limited, 10);
  core::StreamInfo unknown = info(404, nullptr, "", true);
  unknown.localReplyReason = "no route for GET /x";
  shard.record(unknown, 10);
  auto s = registry.snapshot();
  CHECK(s.byRoute["prefix /api"].requests == 2);
  CHECK(s.byCluster["backends"].status2xx == 2);
  CHECK(s.byRoute.size() == 1);
  CHECK(s.localRepliesByReason["rate limit exceeded"] == 1);
  CHECK(s.localRepliesByReason["no route for GET /x"] == 1);
  CHECK(s.localRepliesByReason.size() == 2);
}

TEST_CASE("per-key series are by key id: a registered key named like a configured one counts apart") {
  filters::MetricsRegistry registry(10);
  int worker = 0;
  filters::MetricsShard& shard = registry.shardFor(&worker);
  core::StreamInfo configured = info(200, "demo", "");
  core::StreamInfo registered = info(429, "demo", "");
  auto key = std::make_shared<core::AuthenticatedKey>(*registered.apiKey);
  key->id = "key:42";
  registered.apiKey = key;
  shard.record(configured, 10);
  shard.record(registered, 10);
  shard.record(registered, 10);
  auto s = registry.snapshot();
  CHECK(s.byKey["static:demo"].requests == 1);
  CHECK(s.byKey["key:42"].status429 == 2);
  auto top = registry.topKeys(5);
  REQUIRE(top.size() == 2);
  CHECK(top[0].id == "key:42");
  CHECK(top[0].name == "demo");
  CHECK(top[1].id == "static:demo");
}
