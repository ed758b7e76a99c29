#include "loadgen/options.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace flowguard::loadgen {

namespace {

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void parseKeyDist(const std::string& text, Options& out) {
  if (text == "round-robin") {
    out.keyDist = KeyDist::RoundRobin;
  } else if (text == "uniform") {
    out.keyDist = KeyDist::Uniform;
  } else if (text.rfind("zipf:", 0) == 0) {
    out.keyDist = KeyDist::Zipf;
    size_t used = 0;
    std::string exponent = text.substr(5);
    try {
      out.zipfExponent = std::stod(exponent, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != exponent.size() || out.zipfExponent <= 0) {
      throw std::invalid_argument("--key-dist zipf:S needs S > 0, got '" + text + "'");
    }
  } else {
    throw std::invalid_argument("--key-dist must be round-robin, uniform or zipf:S, got '" + text + "'");
  }
}

// Whether two paths name the same file (whether or not it exists yet).
bool sameFile(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  return std::filesystem::absolute(a).lexically_normal() == std::filesystem::absolute(b).lexically_normal();
}

}  // namespace

TargetUrl parseUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) throw std::invalid_argument("https is not supported: " + url);
  if (url.rfind(scheme, 0) != 0) throw std::invalid_argument("URL must start with http://: " + url);
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  TargetUrl target;
  target.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (target.path[0] == '?') target.path = "/" + target.path;
  if (authority.empty()) throw std::invalid_argument("URL has no host: " + url);
  target.hostHeader = authority;
  std::string portText;
  if (authority[0] == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) throw std::invalid_argument("bad IPv6 literal in " + url);
    target.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw std::invalid_argument("bad authority in " + url);
      portText = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    target.host = authority.substr(0, colon);
    if (colon != std::string::npos) portText = authority.substr(colon + 1);
  }
  if (!portText.empty()) {
    size_t used = 0;
    unsigned long port = 0;
    try {
      port = std::stoul(portText, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != portText.size() || port == 0 || port > 65535) {
      throw std::invalid_argument("bad port in " + url);
    }
    target.port = static_cast<uint16_t>(port);
  }
  if (target.host.empty()) throw std::invalid_argument("URL has no host: " + url);
  return target;
}

void applyLegacyConfig(const std::string& path, Options& out) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(readWholeFile(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(path + ": expected a JSON object");
  try {
    if (j.contains("tries")) out.requests = j["tries"].get<uint64_t>();
    if (j.contains("proxy_url")) out.url = j["proxy_url"].get<std::string>();
    if (j.contains("api_key")) {
      const auto& key = j["api_key"];
      if (key.is_array()) {
        for (const auto& k : key) out.keys.push_back(k.get<std::string>());
      } else if (!key.is_null()) {
        out.keys.push_back(key.get<std::string>());
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::optional<int> parseOptions(int argc, char** argv, Options& out) {
  CLI::App app{"flowguard-loadgen: HTTP/1.1 load generator that knows about API keys and 429s"};
  app.footer(
      "Closed loop by default: each connection sends its next request when the last one\n"
      "finished. With --rate R the run is open loop: request k is due at start + k/R and its\n"
      "latency is measured from that due time (corrected for coordinated omission); the\n"
      "figures measured from the actual send time are reported as 'uncorrected'.\n"
      "\n"
      "Like the original FlowGuard load tester, run with no URL in a folder holding config.json\n"
      "({\"tries\": N, \"api_key\": K or [K, ...], \"proxy_url\": URL}) it runs that config, as\n"
      "--config config.json does: one line per second on stdout, and ratelimit.log with one line\n"
      "per response (time, key prefix, URL, status or 'error', latency in ms) and a closing\n"
      "summary. Reports name keys by their prefix (the gateway's rule), never whole.");
  std::string configPath;
  std::string keysFile;
  std::string bodyFile;
  std::string keyDist = "round-robin";
  std::optional<uint64_t> requests;
  app.add_option("url", out.url, "target, http://host[:port]/path");
  app.add_option("-c,--connections", out.connections, "connections in total")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-t,--threads", out.threads, "threads, one event loop each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* duration = app.add_option("-d,--duration", out.durationS, "seconds to run")
                       ->check(CLI::PositiveNumber)
                       ->capture_default_str();
  app.add_option("-n,--requests", requests, "exactly N measured requests in total")
      ->check(CLI::PositiveNumber)
      ->excludes(duration);
  app.add_option("--warmup", out.warmupS, "seconds of unmeasured load before measuring")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-m,--method", out.method, "request method")->capture_default_str();
  // One value per occurrence, so a URL after -H/--key is not taken as another value.
  app.add_option("-H,--header", out.headers, "extra header 'Name: value' (repeatable)")
      ->allow_extra_args(false);
  auto* body = app.add_option("--body", out.body, "request body");
  app.add_option("--body-file", bodyFile, "request body from a file")->excludes(body);
  app.add_option("--timeout", out.timeoutS, "seconds before a request counts as timed out")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rate", out.rate, "open loop: requests/second in total (fractional allowed)")
      ->check(CLI::PositiveNumber);
  app.add_option("--key", out.keys, "API key sent as X-API-Key (repeatable)")->allow_extra_args(false);
  app.add_option("--keys-file", keysFile, "file with one API key per line");
  app.add_option("--register", out.registerCount,
                 "obtain N keys from POST /register on the target's origin first");
  app.add_option("--key-dist", keyDist, "round-robin | uniform | zipf:S")->capture_default_str();
  app.add_option("--config", configPath,
                 "original FlowGuard config.json (tries, api_key, proxy_url); the default when no URL "
                 "is given and ./config.json exists. Implies --response-log ratelimit.log and prints "
                 "one line per second on stdout");
  app.add_option("--json", out.jsonPath, "write the full summary as JSON");
  app.add_option("--log", out.logPath,
                 "write one line per second (rps, status mix, p99) to a file; in config mode they "
                 "go to stdout, and to a file only with --log");
  app.add_option("--response-log", out.responseLogPath,
                 "write one line per response (time, key prefix, URL, status or 'error', latency) and a "
                 "closing summary");
  app.add_option("--html", out.htmlPath,
                 "write a self-contained HTML report: status mix per second, per-key admitted vs "
                 "429, latency per outcome class");
  app.add_flag("-q,--quiet", out.quiet, "no live progress line (in config mode: no per-second lines)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    out.requests = requests;
    // The original tool took no arguments: it read config.json beside it.
    if (configPath.empty() && out.url.empty() && std::filesystem::exists(kDefaultConfigFile)) {
      configPath = kDefaultConfigFile;
    }
    if (!configPath.empty()) {
      applyLegacyConfig(configPath, out);
      out.configMode = true;
      if (out.responseLogPath.empty()) out.responseLogPath = kDefaultResponseLog;
      if (out.url.empty())
        throw std::invalid_argument(configPath + " has no proxy_url, and no URL was given");
    }
    if (out.url.empty()) {
      throw std::invalid_argument(
          "a URL is required (or --config FILE, or a config.json with proxy_url in the working "
          "directory); see --help");
    }
    if (!out.logPath.empty() && sameFile(out.logPath, out.responseLogPath)) {
      throw std::invalid_argument("--log and --response-log need different files: " + out.logPath);
    }
    out.target = parseUrl(out.url);
    if (!keysFile.empty()) {
      std::istringstream lines(readWholeFile(keysFile));
      for (std::string line; std::getline(lines, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && line[0] != '#') out.keys.push_back(line);
      }
    }
    if (!bodyFile.empty()) out.body = readWholeFile(bodyFile);
    parseKeyDist(keyDist, out);
    for (const std::string& h : out.headers) {
      if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos) {
        throw std::invalid_argument("bad header '" + h + "', expected 'Name: value'");
      }
    }
    if (out.connections < out.threads) out.threads = out.connections;
  } catch (const std::exception& e) {
    std::cerr << "flowguard-loadgen: " << e.what() << "\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace flowguard::loadgen
