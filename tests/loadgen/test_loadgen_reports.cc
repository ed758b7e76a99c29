// What flowguard-loadgen writes, without running it: the response-log line and its closing
// summary, the key-prefix rule, the mean latency, keys by prefix in every report, and how
// the command line picks config mode (a config.json in the working directory).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "loadgen/html_report.h"
#include "loadgen/key_prefix.h"
#include "loadgen/latency_histogram.h"
#include "loadgen/options.h"
#include "loadgen/report.h"
#include "loadgen/response_log.h"
#include "loadgen/run_stats.h"

namespace lg = flowguard::loadgen;

namespace {

// 2024-01-31T12:00:00Z, plus 123.456789 ms.
constexpr uint64_t kNoonNs = 1706702400ULL * 1'000'000'000 + 123'456'789;

// A run of seven measured requests on two keys, with known statuses and latencies.
lg::RunTotals sampleTotals() {
  lg::ThreadStats t(2);
  t.record(200, 1000, 900, 0);
  t.record(200, 2000, 1900, 0);
  t.record(200, 3000, 2900, 1);
  t.record(429, 500, 400, 0);
  t.record(429, 500, 400, 1);
  t.record(503, 10000, 9900, 1);
  t.record(0, 20000, 19900, 1);
  lg::RunTotals totals(2);
  totals.add(t);
  return totals;
}

// Runs `body` with `dir` as the working directory, and restores the old one.
template <typename Body>
void inDirectory(const std::filesystem::path& dir, Body body) {
  auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  try {
    body();
  } catch (...) {
    std::filesystem::current_path(previous);
    throw;
  }
  std::filesystem::current_path(previous);
}

std::optional<int> parse(std::vector<std::string> args, lg::Options& out) {
  args.insert(args.begin(), "flowguard-loadgen");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return lg::parseOptions(static_cast<int>(argv.size()), argv.data(), out);
}

}  // namespace

TEST_CASE("key prefix: the gateway's rule, min(12, size/3) characters") {
  CHECK(lg::keyPrefix("test-api-key") == "test");  // a short yaml key: a third of it
  CHECK(lg::keyPrefix("fg_0123456789abcdefghijklmnopqrstuvw") == "fg_012345678");
  CHECK(lg::keyPrefix(std::string(36, 'k')).size() == 12);
  CHECK(lg::keyPrefix(std::string(35, 'k')).size() == 11);
  CHECK(lg::keyPrefix("abcdef") == "ab");
  CHECK(lg::keyPrefix("ab").empty());
  CHECK(lg::keyPrefix("").empty());
}

TEST_CASE("mean latency: the exact sum of the recorded values over their count") {
  lg::LatencyHistogram h;
  CHECK(h.mean() == 0);
  // 10007 µs shares a bucket with 10000..10007: the bucket would say 10000 or 10007, the sum
  // says exactly 10007.
  h.record(10007);
  h.record(3);
  CHECK(h.mean() == 5005.0);
  h.record(0);  // clamped to 1 µs, and counted so
  CHECK(h.mean() == doctest::Approx(10011.0 / 3));
  CHECK(lg::LatencyHistogram::clampToRange(0) == 1);
  CHECK(lg::LatencyHistogram::clampToRange(7) == 7);

  lg::LatencyHistogram other;
  other.recordCount(1'000'001, 2);
  lg::LatencyHistogram merged = h;
  merged.merge(other);
  CHECK(merged.mean() == doctest::Approx((10011.0 + 2'000'002) / 5));
  merged.subtract(h);  // leaves what `other` recorded
  CHECK(merged.mean() == 1'000'001.0);
}

TEST_CASE("response log: one line per response") {
  CHECK(lg::isoTimeUtc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(lg::isoTimeUtc(kNoonNs) == "2024-01-31T12:00:00.123Z");

  std::string out;
  lg::appendResponseLine(out, kNoonNs, "fg_0123456789", "http://127.0.0.1:8000/echo", 429, 412);
  CHECK(out ==
        "2024-01-31T12:00:00.123Z key=fg_0123456789 url=http://127.0.0.1:8000/echo status=429 "
        "latency_ms=0.412\n");
  out.clear();
  lg::appendResponseLine(out, kNoonNs + 1'000'000'000, "-", "http://h/", 0, 1'234'567);
  CHECK(out == "2024-01-31T12:00:01.123Z key=- url=http://h/ status=error latency_ms=1234.567\n");
}

TEST_CASE("response log: the closing summary") {
  lg::RunTotals totals = sampleTotals();
  // Mean: (1000 + 2000 + 3000 + 500 + 500 + 10000 + 20000) / 7 = 5285.714 µs. p50 is the 4th
  // of 7 values (2000 µs), p99 the 7th (20000 µs is in a bucket of width 16: 20000..20015,
  // capped at the exact max).
  CHECK(lg::responseLogSummary(totals) ==
        "# summary\n"
        "# total attempts: 7\n"
        "# successful (2xx): 3\n"
        "# rate-limited (429): 2\n"
        "# other errors: 2\n"
        "# latency: mean 5.286 ms, p50 2.000 ms, p99 20.000 ms\n"
        "# status 200: 3\n"
        "# status 429: 2\n"
        "# status 503: 1\n"
        "# status error: 1\n");
}

TEST_CASE("response log: worker buffers are written out whole, then the summary") {
  char pattern[] = "/tmp/flowguard-loadgen-unit-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  std::filesystem::path dir(pattern);
  std::string path = (dir / "ratelimit.log").string();
  lg::RunTotals totals = sampleTotals();
  {
    lg::ResponseLog log(path, "http://h/", {"key0", "key1"});
    std::string a, b;  // two workers' buffers
    // More than a chunk from one worker: it writes itself out on the way.
    uint64_t lines = 0;
    while (a.size() < lg::ResponseLog::kChunkBytes - 100) {
      log.add(a, kNoonNs, 0, 200, 1000);
      ++lines;
    }
    for (int i = 0; i < 200; ++i, ++lines) log.add(a, kNoonNs, 0, 200, 1000);
    CHECK(a.size() < lg::ResponseLog::kChunkBytes);  // flushed and cleared once
    log.add(b, kNoonNs, 1, 429, 500);
    log.add(b, kNoonNs, -1, 0, 500);
    lines += 2;
    log.flush(a);
    log.flush(b);
    CHECK(a.empty());
    REQUIRE(log.finish(totals));

    std::ifstream in(path);
    uint64_t responseLines = 0;
    std::string line;
    std::string last;
    while (std::getline(in, line)) {
      if (line.rfind("# ", 0) != 0) {
        ++responseLines;
        CHECK(line.find(" status=") != std::string::npos);
      }
      last = line;
    }
    CHECK(responseLines == lines);
    CHECK(last == "# status error: 1");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("reports name keys by prefix and show the mean") {
  lg::Options options;
  options.url = "http://127.0.0.1:1/x";
  options.keys = {"fg_secretsecretsecretsecretsecret123", "yaml-key-123"};
  lg::RunTotals totals = sampleTotals();
  lg::RunFigures figures;
  figures.elapsedS = 1;

  std::string summary = lg::formatSummary(options, totals, figures);
  INFO(summary);
  CHECK(summary.find("fg_secretsec: 3 requests") != std::string::npos);
  CHECK(summary.find("yaml: 4 requests") != std::string::npos);
  CHECK(summary.find("secretsecret1") == std::string::npos);
  CHECK(summary.find("yaml-key-123") == std::string::npos);
  CHECK(summary.find("all          mean=5.29ms p50=2.00ms") != std::string::npos);
  CHECK(summary.find("429          mean=500.0us") != std::string::npos);

  nlohmann::json json = lg::summaryJson(options, totals, figures);
  std::string text = json.dump();
  CHECK(text.find("secretsecret1") == std::string::npos);
  CHECK(text.find("yaml-key-123") == std::string::npos);
  REQUIRE(json["keys"].size() == 2);
  CHECK(json["keys"][0]["key_prefix"] == "fg_secretsec");
  CHECK_FALSE(json["keys"][0].contains("key"));
  CHECK(json["keys"][1]["key_prefix"] == "yaml");
  CHECK(json["latency"]["mean_us"].get<double>() == doctest::Approx(37000.0 / 7));
  CHECK(json["outcomes"]["429"]["latency"]["mean_us"].get<double>() == 500.0);
  CHECK(json["outcomes"]["2xx"]["latency"]["mean_us"].get<double>() == 2000.0);

  lg::IntervalSample second;
  second.elapsedS = 1;
  second.seconds = 1;
  second.requests = 7;
  second.outcomes = {3, 0, 2, 0, 1, 1};
  std::string html = lg::htmlReport(options, totals, figures, {second});
  CHECK(html.find("secretsecret1") == std::string::npos);
  CHECK(html.find("yaml-key-123") == std::string::npos);
  CHECK(html.find(">fg_secretsec<") != std::string::npos);
  CHECK(html.find("responses per second by status class") != std::string::npos);
  CHECK(html.find("per key: admitted vs rate-limited") != std::string::npos);
  CHECK(html.find("latency by outcome class") != std::string::npos);
  CHECK(html.find("Latency mean 5.286 ms") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
}

TEST_CASE("command line: config.json in the working directory means config mode") {
  char pattern[] = "/tmp/flowguard-loadgen-unit-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  std::filesystem::path dir(pattern);
  inDirectory(dir, [&] {
    lg::Options none;
    CHECK(parse({}, none) == 2);  // no URL, no config.json: a usage error

    std::ofstream(dir / "config.json")
        << R"({"tries": 7, "api_key": "k-123456", "proxy_url": "http://127.0.0.1:1/p"})";
    lg::Options fromDir;
    CHECK_FALSE(parse({"-c", "2"}, fromDir).has_value());
    CHECK(fromDir.configMode);
    CHECK(fromDir.url == "http://127.0.0.1:1/p");
    CHECK(fromDir.requests == 7u);
    CHECK(fromDir.responseLogPath == "ratelimit.log");
    CHECK(fromDir.logPath.empty());  // per-second lines go to stdout only

    lg::Options withUrl;  // a URL wins over the config.json beside it
    CHECK_FALSE(parse({"http://127.0.0.1:2/"}, withUrl).has_value());
    CHECK_FALSE(withUrl.configMode);
    CHECK(withUrl.responseLogPath.empty());

    lg::Options named;
    CHECK_FALSE(
        parse({"--config", "config.json", "--response-log", "r.log", "--log", "s.log"}, named).has_value());
    CHECK(named.configMode);
    CHECK(named.responseLogPath == "r.log");
    CHECK(named.logPath == "s.log");

    lg::Options clash;  // both logs in one file would interleave two formats
    CHECK(parse({"--log", "ratelimit.log"}, clash) == 2);
  });
  std::filesystem::remove_all(dir);
}
