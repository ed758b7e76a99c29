#include "filters/store_handlers.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "core/wall_clock.h"
#include "filters/auth/auth.h"
#include "filters/key_registry.h"
#include "filters/local_rate_limit_store.h"
#include "filters/stored_keys.h"

namespace flowguard::filters {

namespace {

using Json = nlohmann::json;

constexpr size_t kMaxRegisterBody = 16 * 1024;
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxPlanBytes = 100;
constexpr size_t kMaxPrefixBytes = 64;
constexpr size_t kDefaultLogLimit = 100;
constexpr size_t kMaxLogLimit = 1000;
constexpr int64_t kDefaultKeyPage = 100;
constexpr int64_t kMaxKeyPage = 1000;
// /metrics/{key} reads latency percentiles from this many of the key's newest requests.
constexpr size_t kLatencySample = 10'000;

int64_t nowMs() {
  return core::unixNowMs();
}

std::string isoTime(int64_t ms) {
  return core::isoTimeMs(ms);
}

Json optionalTime(const std::optional<int64_t>& ms) {
  return ms ? Json(isoTime(*ms)) : Json(nullptr);
}

Json reply(int status, Json body) {
  return Json{{"status", status}, {"body", std::move(body)}};
}

// Sent as every other local error ({"error", "status", "request_id"}).
Json errorReply(int status, std::string_view message) {
  return Json{{"status", status}, {"error", message}};
}

Json usageJson(const store::KeyUsage& usage) {
  return Json{{"requests", usage.requests}, {"2xx", usage.status2xx}, {"3xx", usage.status3xx},
              {"4xx", usage.status4xx},     {"429", usage.status429}, {"5xx", usage.status5xx}};
}

Json keyJson(const store::KeyListing& listing) {
  const store::StoredKey& key = listing.key;
  return Json{{"id", key.id},
              {"prefix", key.prefix},
              {"name", key.name},
              {"plan", key.plan},
              {"configured", key.configured},  // written in flowguard.yaml: not revocable here
              {"created_at", isoTime(key.createdAtMs)},
              {"revoked_at", optionalTime(key.revokedAtMs)},
              {"last_used_at", optionalTime(listing.usage.lastUsedMs)},
              {"requests", usageJson(listing.usage)}};
}

Json logJson(const store::LogRow& row) {
  const store::LogRecord& r = row.record;
  return Json{{"id", row.id},
              {"time", isoTime(r.timeMs)},
              {"request_id", r.requestId},
              {"key_prefix", r.keyPrefix},
              {"listener", r.listener},
              {"route", r.route},
              {"method", r.method},
              {"path", r.path},
              {"status", r.status},
              {"upstream", r.upstream},
              {"latency_ms", static_cast<double>(r.latencyUs) / 1000.0},
              {"bytes_in", r.bytesIn},
              {"bytes_out", r.bytesOut}};
}

double ratio(int64_t part, int64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / whole;
}

// Nearest-rank percentile of sorted values, in ms.
double percentileMs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

std::optional<int64_t> parseDecimal(std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string generateApiKey() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("the CSPRNG failed");
  std::string key = "fg_";
  for (size_t i = 0; i < sizeof bytes; i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) key.push_back(kAlphabet[(v >> shift) & 63]);
  }
  return key;
}

StoreHandler::StoreHandler(const config::Route& route, store::StoreClient* store,
                           const config::Config& config, core::FilterCallbacks& callbacks)
    : route_(route), store_(store), config_(config), callbacks_(callbacks) {}

StoreHandler::~StoreHandler() {
  if (job_ != 0 && store_ != nullptr) store_->cancel(job_);
}

void StoreHandler::fail(int status, std::string_view reason) {
  callbacks_.sendLocalReply(status, reason);
}

void StoreHandler::start() {
  if (store_ == nullptr) {
    fail(503, "no key store is configured (add a storage section)");
    return;
  }
  switch (route_.handler.kind) {
    case config::RouteHandler::Register:
    case config::RouteHandler::UpdateKey:
      callbacks_.startRequestBody();  // answered when the body is complete
      return;
    case config::RouteHandler::ListKeys:
      return handleListKeys();
    case config::RouteHandler::ViewLogs:
      return handleViewLogs();
    case config::RouteHandler::KeyMetrics:
      return handleKeyMetrics();
    case config::RouteHandler::RevokeKey:
      return handleRevokeKey();
    case config::RouteHandler::Summary:  // answered by the router itself
    case config::RouteHandler::AdminOnly:
    case config::RouteHandler::None:
      break;
  }
  fail(500, "route has no key-store handler");
}

void StoreHandler::onBody(std::string_view data, bool endStream) {
  const auto kind = route_.handler.kind;
  if (kind != config::RouteHandler::Register && kind != config::RouteHandler::UpdateKey) return;
  if (!bodyTooLarge_) {
    if (body_.size() + data.size() > kMaxRegisterBody) {
      bodyTooLarge_ = true;
      body_.clear();
      fail(413, fmt::format("registration body larger than {} bytes", kMaxRegisterBody));
      return;
    }
    body_.append(data);
  }
  if (endStream && !bodyTooLarge_)
    kind == config::RouteHandler::Register ? handleRegister() : handleUpdateKey();
}

std::string StoreHandler::pathArgument() const {
  if (argument_) return *argument_;
  std::string_view path = callbacks_.requestHead().path();
  std::string_view rest =
      path.size() >= route_.match.prefix.size() ? path.substr(route_.match.prefix.size()) : "";
  return percentDecode(rest, false).value_or(std::string());
}

void StoreHandler::run(store::StoreService::Work work, bool touchesKeys) {
  job_ = store_->submit(
      std::move(work),
      [this](store::StoreOutcome outcome) {
        job_ = 0;
        switch (outcome.status) {
          case store::StoreOutcome::Status::Ok: {
            const int status = outcome.value.value("status", 500);
            if (auto error = outcome.value.find("error"); error != outcome.value.end()) {
              fail(status, error->get<std::string>());
              return;
            }
            callbacks_.sendLocalReply(status, "application/json", outcome.value["body"].dump() + "\n");
            return;
          }
          case store::StoreOutcome::Status::Unavailable:
            fail(503, "key store unavailable: " + outcome.error);
            return;
          case store::StoreOutcome::Status::Failed:
            fail(500, "key store error: " + outcome.error);
            return;
        }
      },
      touchesKeys);
}

// Every attempt counts, failed ones too: a client cannot probe names or plans for free.
bool StoreHandler::registrationAllowed() {
  const auto& perIp = config_.registration.perIp;
  if (!perIp || registrations_ == nullptr) return true;
  const std::string& client = callbacks_.streamInfo().downstreamAddress;
  RateLimitDecision decision = registrations_->decide("register|" + client, *perIp, nowMs());
  if (decision.allowed) return true;
  fail(429, fmt::format("too many registrations from {}: {} per {} s (register: per_ip); try again in {} s",
                        client, perIp->requests, perIp->period.count() / 1000,
                        (decision.retryAfterMs + 999) / 1000));
  return false;
}

void StoreHandler::handleRegister() {
  if (!registrationAllowed()) return;
  Json request = Json::object();
  const bool blank = std::all_of(body_.begin(), body_.end(),
                                 [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
  if (!blank) {
    request = Json::parse(body_, nullptr, false);
    if (request.is_discarded()) return fail(400, "request body is not valid JSON");
    if (!request.is_object())
      return fail(400, "expected a JSON object such as {\"name\": \"my-app\", \"plan\": \"free\"}");
  }
  // The original FlowGuard's body was {"owner": "..."}: it names the key when "name" is absent.
  std::string name;
  for (const char* field : {"name", "owner"}) {
    auto it = request.find(field);
    if (it == request.end() || it->is_null()) continue;
    if (!it->is_string()) return fail(400, fmt::format("'{}' must be a string", field));
    if (it->get_ref<const std::string&>().size() > kMaxNameBytes)
      return fail(400, fmt::format("'{}' is longer than {} bytes", field, kMaxNameBytes));
    if (name.empty()) name = it->get<std::string>();
  }
  const config::Config& config = config_;
  // Names of the keys in flowguard.yaml are the operator's: a registered key named "demo"
  // would read as the demo key in every listing, log and dashboard.
  for (const auto& listener : config.listeners) {
    for (const auto& filter : listener.filters) {
      const AuthSettings* auth = authSettingsOf(filter);
      if (auth == nullptr) continue;
      for (const auto& configured : auth->keys) {
        if (core::equalsIgnoreCase(configured.name, name))
          return fail(
              409,
              fmt::format("the name '{}' belongs to a key in flowguard.yaml: choose another name", name));
      }
    }
  }
  std::string plan;
  for (const auto& p : config.plans) {
    if (p.selfService) {
      plan = p.name;
      break;
    }
  }
  if (!config.plans.empty() && plan.empty())
    return fail(403, "no plan is self-service: keys are issued by an operator");
  if (auto it = request.find("plan"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return fail(400, "'plan' must be a string");
    plan = it->get<std::string>();
    if (plan.size() > kMaxPlanBytes)
      return fail(400, fmt::format("'plan' is longer than {} bytes", kMaxPlanBytes));
  }
  const config::Plan* planConfig = config.findPlan(plan);
  if (planConfig == nullptr && !(config.plans.empty() && plan.empty())) {
    std::string known;
    for (const auto& p : config.plans) {
      if (p.selfService) known += (known.empty() ? "" : ", ") + p.name;
    }
    return fail(400, config.plans.empty() ? std::string("no plans are configured: leave 'plan' out")
                                          : fmt::format("unknown plan '{}' (plans: {})", plan, known));
  }
  if (planConfig != nullptr && !planConfig->selfService) {
    return fail(403, fmt::format("plan '{}' is assigned by an operator (admin listener: PATCH /keys/{{id}} "
                                 "{{\"plan\": \"{}\"}}); register without 'plan' for the default",
                                 plan, plan));
  }

  std::string key;
  try {
    key = generateApiKey();
  } catch (const std::exception& e) {
    return fail(500, e.what());
  }
  store::NewKey newKey;
  newKey.digest = digestKey(key);
  newKey.prefix = keyPrefix(key);
  newKey.name = std::move(name);
  newKey.plan = plan;
  newKey.createdAtMs = nowMs();
  newKey.uniqueName = route_.handler.uniqueNames;
  Json limits = planConfig ? limitToJson(planConfig->limit) : Json(nullptr);
  // The key travels to the store thread only to be echoed back once; it is never stored.
  run(
      [newKey = std::move(newKey), key = std::move(key), limits = std::move(limits)](store::Store& store) {
        store::StoredKey stored;
        try {
          stored = store.insertKey(newKey);
        } catch (const store::NameTaken& e) {
          return errorReply(409, std::string(e.what()) + ": choose another name");
        }
        return reply(201, Json{{"api_key", key},
                               {"key_id", stored.id},
                               {"prefix", stored.prefix},
                               {"name", stored.name},
                               {"owner", stored.name},  // the original's field
                               {"plan", stored.plan},
                               {"limits", limits},
                               {"created_at", isoTime(stored.createdAtMs)}});
      },
      true);
}

void StoreHandler::handleListKeys() {
  // A page at a time (?limit=N&after=ID): ten thousand keys in one answer would be megabytes.
  int64_t limit = kDefaultKeyPage;
  int64_t after = 0;
  std::string_view params = callbacks_.requestHead().query();
  while (!params.empty()) {
    const size_t amp = params.find('&');
    std::string_view pair = params.substr(0, amp);
    params = amp == std::string_view::npos ? std::string_view() : params.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (name == "limit") {
      auto n = parseDecimal(value, 1, kMaxKeyPage);
      if (!n) return fail(400, fmt::format("'limit' must be a number from 1 to {}", kMaxKeyPage));
      limit = *n;
    } else if (name == "after") {
      auto id = parseDecimal(value, 0, INT64_MAX);
      if (!id) return fail(400, "'after' must be a key id (the previous page's next_after)");
      after = *id;
    }
  }
  run([limit, after](store::Store& store) {
    // One more than asked for tells whether another page follows.
    std::vector<store::KeyListing> page = store.listKeys(after, limit + 1);
    const bool more = static_cast<int64_t>(page.size()) > limit;
    if (more) page.pop_back();
    Json keys = Json::array();
    for (const store::KeyListing& listing : page) keys.push_back(keyJson(listing));
    const auto [total, active] = store.countKeys();
    const size_t count = keys.size();
    return reply(200, Json{{"keys", std::move(keys)},
                           {"count", count},
                           {"total", total},
                           {"active", active},
                           {"next_after", more ? Json(page.back().key.id) : Json(nullptr)}});
  });
}

void StoreHandler::handleViewLogs() {
  store::LogQuery query;
  query.limit = kDefaultLogLimit;
  std::string_view params = callbacks_.requestHead().query();
  while (!params.empty()) {
    const size_t amp = params.find('&');
    std::string_view pair = params.substr(0, amp);
    params = amp == std::string_view::npos ? std::string_view() : params.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string_view rawName = pair.substr(0, eq);
    std::string_view rawValue = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto name = percentDecode(rawName, true);
    auto value = percentDecode(rawValue, true);
    if (!name || !value) return fail(400, "malformed %-escape in the query string");
    if (*name == "limit") {
      auto n = parseDecimal(*value, 1, static_cast<int64_t>(kMaxLogLimit));
      if (!n) return fail(400, fmt::format("'limit' must be a number from 1 to {}", kMaxLogLimit));
      query.limit = static_cast<size_t>(*n);
    } else if (*name == "key") {
      if (value->size() > kMaxPrefixBytes) return fail(400, "'key' (a key prefix) is too long");
      query.keyPrefix = std::move(*value);
    } else if (*name == "status") {
      auto s = parseDecimal(*value, 100, 599);
      if (!s) return fail(400, "'status' must be an HTTP status from 100 to 599");
      query.status = static_cast<int>(*s);
    } else if (*name == "key_id") {
      auto id = parseDecimal(*value, 1, INT64_MAX);
      if (!id) return fail(400, "'key_id' must be a positive number");
      query.keyId = *id;
    }
    // Other parameters are ignored, as most HTTP APIs do.
  }
  run([query](store::Store& store) {
    Json logs = Json::array();
    for (const store::LogRow& row : store.queryLogs(query)) logs.push_back(logJson(row));
    const size_t count = logs.size();
    return reply(200, Json{{"logs", std::move(logs)}, {"count", count}});
  });
}

void StoreHandler::handleKeyMetrics() {
  const std::string key = pathArgument();
  if (key.empty()) return fail(400, "no API key in the path (GET " + route_.match.prefix + "{api-key})");
  const KeyDigest digest = digestKey(key);
  if (!route_.handler.anyKey) {
    const auto& caller = callbacks_.streamInfo().apiKey;
    if (caller == nullptr || caller->digest != digest) {
      return fail(403, "a key's metrics are only shown to a request that authenticates with that key");
    }
  }
  run([digest](store::Store& store) {
    std::optional<store::KeyListing> listing = store.findKeyByDigest(digest);
    if (!listing) {
      return errorReply(404, "this key is not in the key store");
    }
    std::vector<int64_t> latencies = store.recentLatenciesUs(listing->key.id, kLatencySample);
    std::sort(latencies.begin(), latencies.end());
    const store::KeyUsage& u = listing->usage;
    Json body = keyJson(*listing);
    body["ratios"] = Json{{"2xx", ratio(u.status2xx, u.requests)},
                          {"429", ratio(u.status429, u.requests)},
                          {"5xx", ratio(u.status5xx, u.requests)}};
    body["latency_ms"] =
        Json{{"sample", latencies.size()},
             {"p50", percentileMs(latencies, 0.50)},
             {"p90", percentileMs(latencies, 0.90)},
             {"p99", percentileMs(latencies, 0.99)},
             {"max", latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1000.0}};
    return reply(200, std::move(body));
  });
}

void StoreHandler::handleRevokeKey() {
  auto id = parseDecimal(pathArgument(), 1, INT64_MAX);
  if (!id) return fail(400, "expected a key id in the path (DELETE " + route_.match.prefix + "{id})");
  run(
      [id = *id](store::Store& store) {
        std::optional<store::KeyListing> listing = store.findKey(id);
        if (!listing) return errorReply(404, fmt::format("no key with id {}", id));
        if (listing->key.configured) {
          return errorReply(409, fmt::format("key {} is written in flowguard.yaml: remove it there (a reload "
                                             "applies it) rather than through the API",
                                             id));
        }
        if (store.revokeKey(id, nowMs())) return reply(200, Json{{"revoked", id}});
        return errorReply(409, fmt::format("key {} was revoked already", id));
      },
      true);
}

// An operator's change of plan (the admin listener's PATCH /keys/{id}): any plan, self-service
// or not. The workers pick the new limit up with the next key poll.
void StoreHandler::handleUpdateKey() {
  auto id = parseDecimal(pathArgument(), 1, INT64_MAX);
  if (!id) return fail(400, "expected a key id in the path (PATCH " + route_.match.prefix + "{id})");
  Json request = Json::parse(body_, nullptr, false);
  if (request.is_discarded() || !request.is_object() || !request.contains("plan") ||
      !request["plan"].is_string())
    return fail(400, "expected a JSON object such as {\"plan\": \"pro\"}");
  for (const auto& [field, value] : request.items()) {
    if (field != "plan") return fail(400, fmt::format("'{}' cannot be changed (only 'plan')", field));
  }
  std::string plan = request["plan"].get<std::string>();
  const config::Plan* planConfig = config_.findPlan(plan);
  if (planConfig == nullptr) {
    std::string known;
    for (const auto& p : config_.plans) known += (known.empty() ? "" : ", ") + p.name;
    return fail(
        400, fmt::format("unknown plan '{}' (plans: {})", plan, known.empty() ? "none configured" : known));
  }
  Json limits = limitToJson(planConfig->limit);
  run(
      [id = *id, plan = std::move(plan), limits = std::move(limits)](store::Store& store) {
        std::optional<store::KeyListing> listing = store.findKey(id);
        if (!listing) return errorReply(404, fmt::format("no key with id {}", id));
        if (listing->key.configured) {
          return errorReply(409,
                            fmt::format("key {} is written in flowguard.yaml: change its plan there", id));
        }
        if (!store.setKeyPlan(id, plan)) return errorReply(409, fmt::format("key {} was revoked", id));
        return reply(200, Json{{"key_id", id}, {"plan", plan}, {"limits", limits}});
      },
      true);
}

}  // namespace flowguard::filters
