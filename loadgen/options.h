// Command line of flowguard-loadgen, and the original tool's config.json, as one plain struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowguard::loadgen {

// An http:// URL split into what the engine needs (https is not supported).
struct TargetUrl {
  std::string host;  // as written (name or IPv4/IPv6 literal, without brackets)
  uint16_t port = 80;
  std::string path = "/";  // path and query, as sent in the request line
  std::string hostHeader;  // host[:port] for the Host field
};

// Throws std::invalid_argument with a readable message.
TargetUrl parseUrl(const std::string& url);

enum class KeyDist { RoundRobin, Uniform, Zipf };

struct Options {
  std::string url;
  TargetUrl target;
  unsigned connections = 10;
  unsigned threads = 1;
  double durationS = 10;             // used when `requests` is unset
  std::optional<uint64_t> requests;  // exactly this many measured requests in total
  double warmupS = 0;
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  double timeoutS = 10;
  double rate = 0;  // requests/second in total; 0 = closed loop

  std::vector<std::string> keys;  // --key, --keys-file, config api_key, --register
  unsigned registerCount = 0;
  KeyDist keyDist = KeyDist::RoundRobin;
  double zipfExponent = 1.0;

  std::string jsonPath;
  std::string logPath;          // one line per second
  std::string responseLogPath;  // one line per response, then a summary (response_log.h)
  std::string htmlPath;
  bool quiet = false;  // no live progress line even on a terminal
  // Run from the original tool's config.json (--config, or a config.json in the working
  // directory with no URL given): the per-second lines go to stdout as plain lines instead of
  // the terminal's progress line, and ratelimit.log is the response log unless named otherwise.
  bool configMode = false;
};

// The config file the original tool read from its working directory.
inline constexpr const char* kDefaultConfigFile = "config.json";
// Where the original tool wrote one line per response.
inline constexpr const char* kDefaultResponseLog = "ratelimit.log";

// Parses argv (CLI11), then --config (or ./config.json when neither a URL nor --config is
// given), --keys-file and --body-file. Returns the exit code to use when the program should
// stop at once (--help, or a usage error already printed).
std::optional<int> parseOptions(int argc, char** argv, Options& out);

// Reads the original FlowGuard tool's config.json ({"tries": N, "api_key": K | [K...],
// "proxy_url": URL}) into `out`; a field absent from the file leaves `out` as it was.
// Throws std::runtime_error on a missing file or bad JSON.
void applyLegacyConfig(const std::string& path, Options& out);

}  // namespace flowguard::loadgen
