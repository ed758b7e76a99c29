// YAML binding of the top-level `storage:` (the key and request-log database), `plans:`
// (the limits of keys issued by /register) and `admin:` (the operator's listener) sections.
#include <fmt/format.h>

#include <set>

#include "config/filter_parsers.h"
#include "config/units.h"

namespace flowguard::config {
namespace {

constexpr int64_t kMaxLogQueue = 10'000'000;

// Reasons never quote the URL: it may hold a password.
bool checkStorageUrl(std::string_view url, std::string& reason) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (url.starts_with(kSqlite)) {
    if (url.size() == kSqlite.size()) {
      reason = "no file after sqlite://; e.g. sqlite://./flowguard.db or sqlite:///var/lib/flowguard.db";
      return false;
    }
    return true;
  }
  for (std::string_view scheme : {"postgres://", "postgresql://"}) {
    if (url.starts_with(scheme)) {
      if (url.size() == scheme.size()) {
        reason = "no host; e.g. postgres://flowguard@127.0.0.1:5432/flowguard";
        return false;
      }
      return true;
    }
  }
  reason = "must start with sqlite:// or postgres://, e.g. sqlite://./flowguard.db";
  return false;
}

bool isLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace

void parseStorage(YamlReader& r, const YAML::Node& node, StorageConfig& out) {
  out.location = YamlReader::location(node);
  out.configured = true;  // set even when broken: handlers then do not add "no storage" errors
  if (!r.expectMap(node, "'storage'")) return;
  r.checkKeys(node, "in storage",
              {"url", "password", "request_log", "log_queue", "flush_interval", "key_poll_interval"});
  if (auto url = r.require(node, "url", "in storage")) {
    if (auto text = r.string(*url, "url")) {
      std::string reason;
      if (checkStorageUrl(*text, reason)) {
        out.url = std::move(*text);
      } else {
        r.error(*url, fmt::format("invalid storage URL for 'url': {}", reason));
      }
    }
  }
  if (auto password = YamlReader::find(node, "password")) {
    // Empty means "not given", so "${PGPASSWORD:-}" keeps the URL's password when unset.
    if (auto text = r.string(*password, "password"); text && !text->empty()) out.password = std::move(*text);
  }
  if (auto log = YamlReader::find(node, "request_log")) {
    if (auto value = r.boolean(*log, "request_log")) out.requestLog = *value;
  }
  if (auto queue = YamlReader::find(node, "log_queue")) {
    if (auto value = r.integer(*queue, "log_queue", 1, kMaxLogQueue))
      out.logQueue = static_cast<uint64_t>(*value);
  }
  if (auto interval = YamlReader::find(node, "flush_interval")) {
    if (auto value = r.positiveDuration(*interval, "flush_interval")) out.flushInterval = *value;
  }
  if (auto interval = YamlReader::find(node, "key_poll_interval")) {
    if (auto value = r.positiveDuration(*interval, "key_poll_interval")) out.keyPollInterval = *value;
  }
}

void parsePlans(YamlReader& r, const YAML::Node& node, std::vector<Plan>& out) {
  if (!r.expectMap(node, "'plans'")) return;
  if (node.size() == 0) r.error(node, "'plans' is empty: name at least one plan, e.g. free: { rate: 10/s }");
  for (auto it = node.begin(); it != node.end(); ++it) {
    Plan plan;
    std::optional<std::string> name = r.string(it->first, "plan name");
    if (!name) continue;
    plan.name = std::move(*name);
    plan.location = YamlReader::location(it->first);
    if (plan.name.empty()) {
      r.error(it->first, "a plan name must not be empty");
      continue;
    }
    const YAML::Node spec = it->second;
    if (!r.expectMap(spec, fmt::format("plan '{}'", plan.name))) continue;
    r.checkKeys(spec, fmt::format("in plan '{}'", plan.name),
                {"algorithm", "rate", "burst", "limit", "window", "self_service"});
    plan.selfService = out.empty();  // the first plan is the default, and self-service
    if (auto selfService = YamlReader::find(spec, "self_service")) {
      if (auto value = r.boolean(*selfService, "self_service")) plan.selfService = *value;
    }
    if (parseRateLimitSpec(r, spec, RateLimitAlgorithm::TokenBucket, plan.limit))
      out.push_back(std::move(plan));
  }
}

void parseRegister(YamlReader& r, const YAML::Node& node, RegisterConfig& out) {
  out.location = YamlReader::location(node);
  if (!r.expectMap(node, "'register'")) return;
  r.checkKeys(node, "in register", {"per_ip"});
  auto perIp = YamlReader::find(node, "per_ip");
  if (!perIp) return;
  auto text = r.string(*perIp, "per_ip");
  if (!text) return;
  if (*text == "off") {
    out.perIp.reset();
    return;
  }
  RateLimitSpec spec{RateLimitAlgorithm::FixedWindow, 0, Duration{0}, 0};
  std::string reason;
  if (!parseRate(*text, spec.requests, spec.period, reason)) {
    r.error(*perIp, fmt::format("'per_ip' must be a rate such as 5/h, or off: {}", reason));
    return;
  }
  out.perIp = spec;
}

void parseAdmin(YamlReader& r, const YAML::Node& node, AdminConfig& out) {
  out.location = YamlReader::location(node);
  out.configured = true;
  if (!r.expectMap(node, "'admin'")) return;
  r.checkKeys(node, "in admin", {"address", "token"});
  std::optional<YAML::Node> addressNode = YamlReader::find(node, "address");
  if (addressNode) {
    if (auto address = r.address(*addressNode, "address")) out.address = *address;
  }
  if (auto token = YamlReader::find(node, "token")) {
    if (auto text = r.string(*token, "token")) out.token = std::move(*text);
  }
  // A non-loopback admin listener without a token is not an error: the gateway makes one
  // at its first start and keeps it in state_dir (see AdminConfig).
  out.tokenRequired = !isLoopbackHost(out.address.host);
}

}  // namespace flowguard::config
