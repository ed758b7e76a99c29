// YAML binding of the top-level `redis:` section used by rate_limit's redis store.
#include <fmt/format.h>

#include <limits>

#include "config/filter_parsers.h"
#include "config/units.h"

namespace flowguard::config {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr uint16_t kDefaultPort = 6379;

// redis://[:password@]host[:port][/db]. Reasons never quote the URL: it may hold a password.
bool parseRedisUrl(std::string_view url, RedisConfig& out, std::string& reason) {
  if (url.substr(0, kScheme.size()) != kScheme) {
    reason = url.substr(0, 9) == "rediss://" ? "rediss:// (TLS) is not supported"
                                             : "must start with redis://, e.g. redis://127.0.0.1:6379/0";
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view db = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    if (userinfo.empty() || userinfo[0] != ':') {
      reason = "a user name is not supported; write redis://:password@host:port";
      return false;
    }
    out.password = std::string(userinfo.substr(1));
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) {
    reason = "no host; expected redis://host:port";
    return false;
  }
  std::string hostPort(authority);
  bool hasPort = authority[0] == '['
                     ? authority.find("]:") != std::string_view::npos
                     : authority.find(':') != std::string_view::npos;
  if (!hasPort) hostPort += fmt::format(":{}", kDefaultPort);
  SocketAddress address;
  if (!parseSocketAddress(hostPort, address, reason, HostKind::NameOrLiteral)) return false;
  out.host = std::move(address.host);
  out.port = address.port;

  out.db = 0;
  if (!db.empty()) {
    int64_t index = 0;
    std::string unused;
    if (!parseInteger(db, index, unused) || index < 0 || index > std::numeric_limits<int32_t>::max()) {
      reason = "the database after '/' must be a number such as 0";
      return false;
    }
    out.db = static_cast<uint32_t>(index);
  }
  return true;
}

}  // namespace

void parseRedis(YamlReader& r, const YAML::Node& node, RedisConfig& out) {
  out.location = YamlReader::location(node);
  // Set even when the section is broken: its own errors are reported, and `store: redis`
  // pointing at it should not add a second, misleading "no redis section".
  out.configured = true;
  if (!r.expectMap(node, "'redis'")) return;
  r.checkKeys(node, "in redis", {"url", "password", "timeout"});
  if (auto url = YamlReader::find(node, "url")) {
    if (auto text = r.string(*url, "url"); text && text->empty()) {
      // `url: "${FLOWGUARD_REDIS_URL:-}"`: one file for set-ups with and without Redis.
      out.configured = false;
      return;
    }
    if (auto text = r.string(*url, "url")) {
      std::string reason;
      RedisConfig parsed;
      if (parseRedisUrl(*text, parsed, reason)) {
        out.host = std::move(parsed.host);
        out.port = parsed.port;
        out.db = parsed.db;
        out.password = std::move(parsed.password);
      } else {
        r.error(*url, fmt::format("invalid Redis URL for 'url': {}", reason));
      }
    }
  }
  if (auto password = YamlReader::find(node, "password")) {
    // Empty means "not given", so "${REDIS_PASSWORD:-}" keeps the URL's password when unset.
    if (auto text = r.string(*password, "password"); text && !text->empty()) out.password = std::move(*text);
  }
  if (auto timeout = YamlReader::find(node, "timeout")) {
    if (auto value = r.positiveDuration(*timeout, "timeout")) out.timeout = *value;
  }
}

}  // namespace flowguard::config
