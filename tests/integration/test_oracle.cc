// An oracle that is not FlowGuard (issue 19): the test HttpClient parses answers with
// FlowGuard's own codec, so an encoder bug could be cancelled out by the matching parser.
// Here the key exchanges of each feature area (proxying, chunked, pipelining, local replies,
// admin JSON) are read by clients that share no code with FlowGuard: Python's http.client and
// a strict framing parser (tests/integration/oracle_client.py, standard library only), and
// curl for the Prometheus text. The script reports what it saw as JSON; the assertions below
// are exact where the protocol is.
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

struct ChildResult {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up in PATH by the shell) to completion, stdout and stderr apart.
// Arguments must not contain a single quote.
ChildResult runChild(const std::vector<std::string>& argv, Millis timeout = 120s) {
  TempDir dir;
  std::string command = "exec";
  for (const auto& a : argv) command += fmt::format(" '{}'", a);
  command += fmt::format(" >'{}' 2>'{}'", dir.file("out"), dir.file("err"));
  Process p({"/bin/sh", "-c", command}, dir.path());
  ChildResult result;
  auto status = p.waitExit(timeout);
  if (!status) {
    p.stop();
    throw std::runtime_error(
        fmt::format("{} did not finish in time; stderr:\n{}", argv[0], readFile(dir.file("err"))));
  }
  result.status = *status;
  result.out = readFile(dir.file("out"));
  result.err = readFile(dir.file("err"));
  return result;
}

// Debian's interpreter when present (the one the CI image installs), else PATH's.
std::string python() {
  return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

std::string sourceDir() {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  if (source == nullptr) throw std::runtime_error("FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  return source;
}

// Runs oracle_client.py for one area against the gateway; its "result" object. A parse
// error or timeout inside the script fails here, with the script's own message.
Json oracle(const std::string& area, uint16_t port, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{python(), sourceDir() + "/tests/integration/oracle_client.py", area, "--port",
                                std::to_string(port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildResult run = runChild(argv);
  INFO("oracle_client.py " << area << " stderr:\n" << run.err);
  REQUIRE(run.status == 0);
  Json j = Json::parse(run.out);
  REQUIRE_MESSAGE(!j.contains("error"),
                  "the independent client rejected an answer: " << j.value("error", "") << "\n"
                                                                << j.value("traceback", ""));
  return j["result"];
}

// Every value of header `name` (case-insensitive) in a [[name, value], ...] list.
std::vector<std::string> headerValues(const Json& r, const std::string& name) {
  std::vector<std::string> out;
  for (const Json& h : r["headers"]) {
    const std::string got = h[0].get<std::string>();
    if (got.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(got[i])) !=
          std::tolower(static_cast<unsigned char>(name[i])))
        same = false;
    }
    if (same) out.push_back(h[1].get<std::string>());
  }
  return out;
}

// The only value of `name`; "" when absent, "<N values>" when repeated (never expected here).
std::string header(const Json& r, const std::string& name) {
  auto values = headerValues(r, name);
  if (values.empty()) return {};
  if (values.size() > 1) return fmt::format("<{} values>", values.size());
  return values[0];
}

// A gateway error reply as the independent client read it: exact status, JSON type, a
// Content-Length that is the body's length, and the documented body.
void checkLocalReply(const Json& r, int status) {
  CAPTURE(r.dump());
  CHECK(r["status"] == status);
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "Content-Length") == std::to_string(r["body_len"].get<size_t>()));
  CHECK(header(r, "Transfer-Encoding").empty());
  Json body = Json::parse(r["body"].get<std::string>());
  CHECK(body["status"] == status);
  CHECK(body["error"].is_string());
  CHECK_FALSE(body["error"].get<std::string>().empty());
  CHECK(body["request_id"].is_string());
  CHECK_FALSE(body["request_id"].get<std::string>().empty());
}

Json bodyJson(const Json& r) {
  return Json::parse(r["body"].get<std::string>());
}

}  // namespace

TEST_CASE("oracle: proxying a POST body and upstream response headers, read by http.client") {
  Backend b("b1");
  RawUpstream up(
      "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
      "X-Up-Kept: k\r\nConnection: keep-alive, X-Up-Secret\r\nX-Up-Secret: s\r\n"
      "Keep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\nrawok");
  GatewaySpec spec;
  spec.routes = {"{ match: { prefix: /raw }, cluster: raw }", "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port}), clusterYaml("raw", {up.port})};
  Gateway gw(spec);
  Json r = oracle("proxy", gw.port);

  // Every byte value of a 1 KiB body, echoed back through both hops.
  const Json& echo = r["echo"];
  CAPTURE(echo.dump());
  CHECK(echo["status"] == 200);
  CHECK(echo["reason"] == "OK");
  CHECK(echo["version"] == 11);
  CHECK(echo["body_len"] == 1024);
  CHECK(r["echo_matches"] == true);
  CHECK(header(echo, "Content-Length") == "1024");
  CHECK(header(echo, "Content-Type") == "application/x-oracle");
  CHECK(header(echo, "Transfer-Encoding").empty());
  CHECK(echo["chunked"] == false);

  const Json& big = r["echo_big"];
  CHECK(big["status"] == 200);
  CHECK(big["body_len"] == 200000);
  CHECK(r["echo_big_matches"] == true);
  CHECK(header(big, "Content-Length") == "200000");

  // The request head and body as the backend received them.
  const Json& info = r["info"];
  REQUIRE(info["status"] == 200);
  CHECK(header(info, "Content-Length") == std::to_string(info["body_len"].get<size_t>()));
  Json seen = bodyJson(info);
  CHECK(seen["method"] == "POST");
  CHECK(seen["path"] == "/some/where");
  CHECK(seen["query"] == "x=1&y=two");
  CHECK(seen["body_bytes"] == 5);
  CHECK(seen["headers"]["content-length"] == "5");
  CHECK(seen["headers"]["x-custom"] == "kept");
  CHECK(seen["headers"]["content-type"] == "text/plain");
  CHECK(seen["headers"]["host"] == fmt::format("127.0.0.1:{}", gw.port));

  // The scripted upstream's answer: status, reason, repeated fields apart and in order,
  // end-to-end fields kept, hop-by-hop ones (and the one its Connection named) gone.
  const Json& raw = r["raw"];
  CAPTURE(raw.dump());
  CHECK(raw["status"] == 201);
  CHECK(raw["reason"] == "Created");
  CHECK(raw["body"] == "rawok");
  CHECK(header(raw, "Content-Length") == "5");
  CHECK(header(raw, "Content-Type") == "text/plain");
  CHECK(headerValues(raw, "Set-Cookie") == std::vector<std::string>{"a=1", "b=2"});
  CHECK(header(raw, "X-Up-Kept") == "k");
  CHECK(headerValues(raw, "X-Up-Secret").empty());
  CHECK(headerValues(raw, "Keep-Alive").empty());
  // The same client connection carries on after it.
  CHECK(r["after_raw"]["status"] == 200);
  CHECK(bodyJson(r["after_raw"])["path"] == "/after");
  CHECK(up.heads == 1);
}

TEST_CASE("oracle: a chunked request body and chunked responses, by http.client and a strict parser") {
  Backend b("b1");
  Gateway gw(proxySpec({b.port}));
  Json r = oracle("chunked", gw.port);

  // http.client's chunked upload, echoed by the backend as chunked, re-framed by the gateway.
  const Json& echo = r["echo"];
  CAPTURE(echo.dump());
  CHECK(echo["status"] == 200);
  CHECK(echo["chunked"] == true);
  CHECK(header(echo, "Transfer-Encoding") == "chunked");
  CHECK(headerValues(echo, "Content-Length").empty());
  CHECK(header(echo, "Content-Type") == "application/x-chunks");
  CHECK(echo["body_len"] == r["echo_total"]);
  CHECK(r["echo_total"] == 6 + 5000 + 1 + 256 + 5);
  CHECK(r["echo_matches"] == true);

  // The upstream got a chunked request of the same length (not a Content-Length one).
  Json seen = bodyJson(r["info"]);
  CHECK(seen["body_bytes"] == 6 + 5000 + 1 + 256 + 5);
  CHECK(seen["headers"]["transfer-encoding"] == "chunked");
  CHECK_FALSE(seen["headers"].contains("content-length"));

  const Json& bytes = r["bytes"];
  CHECK(bytes["status"] == 200);
  CHECK(bytes["chunked"] == true);
  CHECK(bytes["body_len"] == 100000);
  CHECK(bytes["body_is_pattern"] == true);

  // The strict parser: hex-only size lines, CRLF after every chunk, one last chunk, and
  // nothing after it before the close.
  REQUIRE(r["strict_bytes"].size() == 1);
  const Json& strict = r["strict_bytes"][0];
  CHECK(strict["status"] == 200);
  CHECK(header(strict, "Transfer-Encoding") == "chunked");
  CHECK(header(strict, "Connection") == "close");
  CHECK(strict["body_len"] == 70000);
  CHECK(strict["body_is_pattern"] == true);
  uint64_t sum = 0;
  for (const Json& size : strict["chunk_sizes"]) sum += size.get<uint64_t>();
  CHECK(sum == 70000);

  REQUIRE(r["strict_echo"].size() == 1);
  const Json& strictEcho = r["strict_echo"][0];
  CHECK(strictEcho["status"] == 200);
  CHECK(header(strictEcho, "Transfer-Encoding") == "chunked");
  CHECK(header(strictEcho, "Content-Type") == "text/plain");
  CHECK(strictEcho["body"] == "hello world");
}

TEST_CASE("oracle: pipelined requests answered in order, read one at a time from one stream") {
  Backend b("b1");
  GatewaySpec spec;
  spec.routes = {
      "{ match: { path: /direct }, direct_response: { status: 200, body: direct, content_type: text/plain } "
      "}",
      // DELETE matches no route: a local 404 in the middle of the pipeline.
      "{ match: { prefix: /, methods: [GET, HEAD, POST] }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  Gateway gw(spec);
  Json r = oracle("pipeline", gw.port);

  // One shape per answer, checked for both parsers: the first (slow) request answered first.
  auto checkRound = [](const Json& answers, bool fromHttpClient) {
    REQUIRE(answers.size() == 8);
    for (size_t i = 0; i < answers.size(); ++i) {
      CAPTURE(i);
      CAPTURE(answers[i].dump());
      CHECK(answers[i]["status"] == (i == 6 ? 404 : 200));
    }
    CHECK(bodyJson(answers[0])["path"] == "/delay/150");
    Json p2 = bodyJson(answers[1]);
    CHECK(p2["path"] == "/p2");
    CHECK(p2["method"] == "POST");
    CHECK(p2["body_bytes"] == 7);
    CHECK(answers[2]["body"] == "direct");
    CHECK(header(answers[2], "Content-Length") == "6");
    CHECK(header(answers[3], "Transfer-Encoding") == "chunked");
    CHECK(answers[3]["body_len"] == 3000);
    CHECK(answers[3]["body_is_pattern"] == true);
    CHECK(header(answers[4], "Content-Length") == "1000");  // HEAD: the length, no body
    CHECK(answers[4]["body_len"] == 0);
    CHECK(header(answers[5], "Transfer-Encoding") == "chunked");
    CHECK(answers[5]["body"] == "abcd");
    checkLocalReply(answers[6], 404);
    CHECK(bodyJson(answers[7])["path"] == "/p8");
    CHECK(header(answers[7], "Connection") == "close");
    if (fromHttpClient) CHECK(answers[3]["chunked"] == true);
  };
  checkRound(r["answers"], true);
  CHECK(r["left_over"] == "");  // after the last answer: EOF, no stray bytes
  checkRound(r["strict"], false);
  // Two rounds of six proxied requests each, and the /_stats probe itself.
  CHECK(b.requests() == 2 * 6 + 1);
}

TEST_CASE("oracle: local replies 404, 401 and 429 carry a JSON body of exactly Content-Length bytes") {
  Backend b("b1");
  GatewaySpec spec;
  spec.filters = {"{ name: auth, keys: [ { key: oracle-key-0001, name: oracle } ] }",
                  // 1/h: no token comes back while the test runs, however slow the machine.
                  "{ name: rate_limit, rate: 1/h, burst: 4 }"};
  spec.routes = {"{ match: { prefix: /api }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  Gateway gw(spec);
  Json r = oracle("local", gw.port);

  // Keep-alive: each answer must end exactly where its Content-Length says, or the next one
  // on the connection would not parse.
  const Json& first = r["first"];
  REQUIRE(first.size() == 4);
  CHECK(first[0]["status"] == 200);
  CHECK(bodyJson(first[0])["path"] == "/api/a");
  checkLocalReply(first[1], 404);
  checkLocalReply(first[2], 401);
  CHECK(bodyJson(first[2])["error"].get<std::string>().find("missing API key") != std::string::npos);
  checkLocalReply(first[3], 401);

  // Read to the close by the strict parser: nothing before or after the declared body.
  for (const char* name : {"raw_404", "raw_401", "raw_429"}) {
    CAPTURE(name);
    REQUIRE(r[name].size() == 1);
    const Json& raw = r[name][0];
    checkLocalReply(raw, std::stoi(std::string(name).substr(4)));
    CHECK(header(raw, "Connection") == "close");
  }

  const Json& second = r["second"];
  REQUIRE(second.size() == 2);
  CHECK(second[0]["status"] == 200);  // the fourth token: /api/a, /nowhere twice, this one
  const Json& limited = second[1];
  checkLocalReply(limited, 429);
  CHECK(header(limited, "RateLimit-Limit") == "4");
  CHECK(header(limited, "RateLimit-Remaining") == "0");
  const int retryAfter = std::stoi(header(limited, "Retry-After"));
  CHECK(retryAfter >= 1);
  CHECK(retryAfter <= 3600);
  CHECK(b.requests() == 2 + 1);  // only the two 200s reached the backend (+ this probe)
}

TEST_CASE("oracle: admin /stats and /clusters by Python's json, the Prometheus text by curl") {
  Backend b("b1");
  GatewaySpec spec;
  spec.filters = {"{ name: metrics }"};
  spec.routes = {"{ match: { prefix: /api }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  // The script sends 4 proxied requests and 2 to no route, then waits for /stats to count 6.
  Json r = oracle("admin", gw.port, {"--admin-port", std::to_string(adminPort), "--expect-requests", "6"});
  CHECK(r["traffic"] == Json::array({200, 200, 200, 200, 404, 404}));

  const Json& stats = r["stats"];
  CAPTURE(stats.dump());
  REQUIRE(stats["status"] == 200);
  CHECK(header(stats, "Content-Type") == "application/json");
  CHECK(header(stats, "Content-Length") == std::to_string(stats["body_len"].get<size_t>()));
  REQUIRE(stats.contains("json"));  // Python's json accepted the whole body
  const Json& totals = stats["json"]["totals"];
  CHECK(totals["requests"] == 6);
  CHECK(totals["2xx"] == 4);
  CHECK(totals["4xx"] == 2);
  CHECK(totals["local_replies"] == 2);
  CHECK(stats["json"]["clusters"]["backends"]["requests"] == 4);

  const Json& clusters = r["clusters"];
  REQUIRE(clusters["status"] == 200);
  CHECK(header(clusters, "Content-Type") == "application/json");
  REQUIRE(clusters.contains("json"));
  REQUIRE(clusters["json"]["clusters"].size() == 1);
  CHECK(clusters["json"]["clusters"][0]["name"] == "backends");
  REQUIRE(clusters["json"]["clusters"][0]["hosts"].size() == 1);
  const Json& host = clusters["json"]["clusters"][0]["hosts"][0];
  CHECK(host["address"] == fmt::format("127.0.0.1:{}", b.port));
  CHECK(host["requests"] == 4);
  CHECK(host["2xx"] == 4);

  // curl reads the Prometheus text on a closing connection: a Content-Length longer than the
  // body is curl's exit 18, a shorter one leaves the size it downloaded below the text's end.
  TempDir dir;
  ChildResult curl = runChild({"curl", "-sS", "--http1.1", "--max-time", "30", "-H", "Connection: close",
                               "-D", dir.file("head"), "-o", dir.file("body"), "-w",
                               "%{http_code} %{size_download} %{content_type}",
                               fmt::format("http://127.0.0.1:{}/stats/prometheus", adminPort)});
  INFO("curl stderr: " << curl.err);
  REQUIRE(curl.status == 0);
  const std::string body = readFile(dir.file("body"));
  std::istringstream w(curl.out);
  int code = 0;
  size_t downloaded = 0;
  std::string contentType;
  w >> code >> downloaded;
  std::getline(w >> std::ws, contentType);
  CHECK(code == 200);
  CHECK(contentType == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(downloaded == body.size());
  // The head as curl dumped it: exactly one Content-Length, equal to the body curl got.
  std::istringstream head(readFile(dir.file("head")));
  std::vector<std::string> lengths;
  for (std::string line; std::getline(head, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string lower = [&] {
      std::string s = line;
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    }();
    if (lower.rfind("content-length:", 0) == 0) lengths.push_back(line.substr(line.find(':') + 2));
  }
  REQUIRE(lengths.size() == 1);
  CHECK(lengths[0] == std::to_string(body.size()));
  REQUIRE_FALSE(body.empty());
  CHECK(body.back() == '\n');  // the exposition format ends every line, the last one too
  std::map<std::string, std::string> series;
  std::istringstream text(body);
  for (std::string line; std::getline(text, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    series[line.substr(0, space)] = line.substr(space + 1);
  }
  CHECK(series["flowguard_requests_total{listener=\"test\",status=\"2xx\"}"] == "4");
  CHECK(series["flowguard_requests_total{listener=\"test\",status=\"4xx\"}"] == "2");
  CHECK(series["flowguard_cluster_requests_total{cluster=\"backends\"}"] == "4");
  CHECK(series[fmt::format("flowguard_host_requests_total{{cluster=\"backends\",host=\"127.0.0.1:{}\"}}",
                           b.port)] == "4");
}
