#include "admin/admin_filter.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <vector>

#include "admin/dashboard_html.h"
#include "core/wall_clock.h"
#include "filters/filter_plugin.h"
#include "filters/route_match.h"
#include "filters/stored_keys.h"

namespace flowguard::admin {

namespace {

using Json = nlohmann::json;
constexpr std::string_view kMasked = "********";

Json limitJson(const config::RateLimitSpec& limit) {
  return filters::limitToJson(limit);
}

// postgres://user:secret@host/db → postgres://user:********@host/db; a password= parameter too.
std::string maskUrl(std::string url) {
  const size_t scheme = url.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t at = url.find('@', start);
    const size_t slash = url.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const size_t colon = url.find(':', start);
      if (colon != std::string::npos && colon < at) url.replace(colon + 1, at - colon - 1, kMasked);
    }
  }
  const size_t password = url.find("password=");
  if (password != std::string::npos) {
    const size_t end = url.find('&', password);
    url.replace(password + 9, end == std::string::npos ? std::string::npos : end - password - 9, kMasked);
  }
  return url;
}

Json filterJson(const config::FilterConfig& filter) {
  Json j = {{"name", filter.name}};
  std::visit(
      [&](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, config::RouterConfig>) {
          Json routes = Json::array();
          for (const config::Route& r : s.routes) {
            Json route = {{"match", filters::routeMatchJson(r.match)}};
            if (!r.cluster.empty()) route["cluster"] = r.cluster;
            if (r.directResponse) route["direct_response"] = {{"status", r.directResponse->status}};
            if (r.handler.kind != config::RouteHandler::None) {
              route["handler"] = {{"name", config::routeHandlerName(r.handler.kind)},
                                  {"any_key", r.handler.anyKey},
                                  {"unique_names", r.handler.uniqueNames}};
            }
            if (r.timeout) route["timeout_ms"] = r.timeout->count();
            if (r.retries) route["retries"] = *r.retries;
            for (const config::RoutePerFilter& entry : r.perFilter) {
              const filters::FilterPlugin* plugin = filters::findFilterPlugin(entry.filter);
              Json settings = {{"disabled", entry.disabled}};
              if (entry.settings && plugin != nullptr) settings.update(plugin->dump(*entry.settings));
              route["per_filter"][entry.filter] = std::move(settings);
            }
            routes.push_back(std::move(route));
          }
          j["routes"] = std::move(routes);
        } else {
          static_assert(std::is_same_v<T, config::PluginFilterConfig>);
          if (const filters::FilterPlugin* plugin = filters::findFilterPlugin(filter.name);
              plugin && s.settings) {
            j.update(plugin->dump(*s.settings));
            j["name"] = filter.name;
          }
        }
      },
      filter.settings);
  return j;
}

}  // namespace

Json configDump(const config::Config& config) {
  Json listeners = Json::array();
  for (const auto& l : config.listeners) {
    Json filters = Json::array();
    for (const auto& f : l.filters) filters.push_back(filterJson(f));
    Json trusted = Json::array();
    for (const auto& range : l.trustedProxies) trusted.push_back(range.str());
    listeners.push_back({{"name", l.name},
                         {"address", l.address.str()},
                         {"max_header_bytes", l.maxHeaderBytes},
                         {"max_headers", l.maxHeaders},
                         {"max_request_body", l.maxRequestBody},
                         {"header_timeout_ms", l.headerTimeout.count()},
                         {"idle_timeout_ms", l.idleTimeout.count()},
                         {"body_timeout_ms", l.bodyTimeout.count()},
                         {"max_connections", l.maxConnections},
                         {"buffer_limit", l.bufferLimit},
                         {"forward_trailers", l.forwardTrailers},
                         {"trusted_proxies", std::move(trusted)},
                         {"client_request_id", l.keepClientRequestId ? "keep" : "drop"},
                         {"filters", std::move(filters)}});
  }
  Json clusters = Json::array();
  for (const auto& c : config.clusters) {
    Json hosts = Json::array();
    for (const auto& h : c.hosts) hosts.push_back(h.str());
    Json cluster = {
        {"name", c.name},
        {"hosts", std::move(hosts)},
        {"connect_timeout_ms", c.connectTimeout.count()},
        {"timeout_ms", c.timeout.count()},
        {"retries", c.retries},
        {"max_connections_per_host", c.maxConnectionsPerHost},
        {"max_idle_per_host", c.maxIdlePerHost},
        {"no_healthy_hosts", c.noHealthyHosts == config::NoHealthyHosts::Panic ? "panic" : "reject"},
        {"circuit_breakers",
         {{"max_connections", c.circuitBreakers.maxConnections},
          {"max_pending_requests", c.circuitBreakers.maxPendingRequests},
          {"max_requests", c.circuitBreakers.maxRequests}}}};
    if (c.healthCheck.enabled) {
      cluster["health_check"] = {{"path", c.healthCheck.path},
                                 {"interval_ms", c.healthCheck.interval.count()},
                                 {"timeout_ms", c.healthCheck.timeout.count()},
                                 {"healthy_threshold", c.healthCheck.healthyThreshold},
                                 {"unhealthy_threshold", c.healthCheck.unhealthyThreshold}};
    }
    if (c.outlierDetection.enabled) {
      cluster["outlier_detection"] = {
          {"consecutive_5xx", c.outlierDetection.consecutive5xx},
          {"consecutive_connect_failures", c.outlierDetection.consecutiveConnectFailures},
          {"base_ejection_time_ms", c.outlierDetection.baseEjectionTime.count()}};
    }
    clusters.push_back(std::move(cluster));
  }
  Json plans = Json::object();
  for (const auto& p : config.plans) {
    plans[p.name] = limitJson(p.limit);
    plans[p.name]["self_service"] = p.selfService;
  }
  const auto& perIp = config.registration.perIp;
  Json registration = {{"per_ip", perIp ? limitJson(*perIp) : Json("off")}};
  Json out = {{"source", config.sourcePath},
              {"workers", config.workers == 0 ? Json("auto") : Json(config.workers)},
              {"listeners", std::move(listeners)},
              {"clusters", std::move(clusters)},
              {"plans", std::move(plans)},
              {"register", std::move(registration)}};
  out["redis"] = config.redis.configured
                     ? Json{{"host", config.redis.host},
                            {"port", config.redis.port},
                            {"db", config.redis.db},
                            {"password", config.redis.password.empty() ? Json(nullptr) : Json(kMasked)},
                            {"timeout_ms", config.redis.timeout.count()}}
                     : Json(nullptr);
  out["storage"] = config.storage.configured
                       ? Json{{"url", maskUrl(config.storage.url)},
                              {"password", config.storage.password.empty() ? Json(nullptr) : Json(kMasked)},
                              {"request_log", config.storage.requestLog},
                              {"log_queue", config.storage.logQueue},
                              {"flush_interval_ms", config.storage.flushInterval.count()},
                              {"key_poll_interval_ms", config.storage.keyPollInterval.count()}}
                       : Json(nullptr);
  out["admin"] = {{"address", config.admin.address.str()},
                  {"token", !config.admin.token.empty()  ? Json(kMasked)
                            : config.admin.tokenRequired ? Json("generated, kept in state_dir")
                                                         : Json(nullptr)}};
  out["overload"] = {{"max_connections",
                      config.overload.maxConnections ? Json(*config.overload.maxConnections) : Json("auto")},
                     {"memory_limit", config.overload.memoryLimit},
                     {"check_interval_ms", config.overload.checkInterval.count()}};
  return out;
}

Json reloadAttemptJson(const config::ReloadAttempt& attempt) {
  return Json{{"at", attempt.at},
              {"trigger", attempt.trigger},
              {"result", attempt.ok ? "ok" : "error"},
              {"errors", attempt.errors},
              {"warnings", attempt.warnings},
              {"restart_required", attempt.restartRequired},
              {"generation", attempt.generation},
              {"duration_ms", std::round(attempt.durationMs * 100) / 100}};
}

Json liveConfigDump(const config::LiveConfig& live) {
  return Json{{"config", configDump(*live.config)},
              {"generation", live.generation},
              {"loaded_at", live.loadedAt},
              {"last_reload", live.lastReload ? reloadAttemptJson(*live.lastReload) : Json(nullptr)},
              {"reloads", Json{{"ok", live.reloadsOk}, {"failed", live.reloadsFailed}}}};
}

AdminFilterFactory::AdminFilterFactory(const config::LiveConfig& live, AdminStats& stats,
                                       store::StoreClient* store, ReloadFunction reload,
                                       const std::string& token)
    : live_(live), stats_(stats), store_(store), reload_(std::move(reload)) {
  if (!token.empty()) tokenDigest_ = filters::digestKey(token);
  listKeys_.handler.kind = config::RouteHandler::ListKeys;
  viewLogs_.handler.kind = config::RouteHandler::ViewLogs;
  revokeKey_.handler.kind = config::RouteHandler::RevokeKey;
  revokeKey_.match.prefix = "/keys/";
  updateKey_.handler.kind = config::RouteHandler::UpdateKey;
  updateKey_.match.prefix = "/keys/";
  keyMetrics_.handler.kind = config::RouteHandler::KeyMetrics;
  keyMetrics_.handler.anyKey = true;
}

std::unique_ptr<core::Filter> AdminFilterFactory::create() {
  return std::make_unique<AdminFilter>(*this);
}

void AdminFilter::json(int status, const Json& body) {
  callbacks().sendLocalReply(status, "application/json", body.dump() + "\n");
}

void AdminFilter::storeRequest(const config::Route& route, std::optional<std::string> argument) {
  config_ = factory_.live_.config;
  handler_ = std::make_unique<filters::StoreHandler>(route, factory_.store_, *config_, callbacks());
  if (argument) handler_->setArgument(std::move(*argument));
  handler_->start();
}

namespace {

std::string_view hostWithoutPort(std::string_view host, std::string_view* port = nullptr) {
  size_t end = host.size();
  if (!host.empty() && host.front() == '[') {
    end = std::min(host.find(']'), host.size() - 1) + 1;
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    end = colon;
  }
  if (port != nullptr)
    *port = end < host.size() && host[end] == ':' ? host.substr(end + 1) : std::string_view();
  return host.substr(0, end);
}

// A name a browser could have reached this listener by without DNS tricks: localhost, a
// loopback literal, or the literal address it listens on. A page that rebinds its own domain
// to 127.0.0.1 still sends that domain as Host, and is refused.
bool ownHost(std::string_view host, const config::SocketAddress& listening) {
  if (core::equalsIgnoreCase(host, "localhost") || host == "127.0.0.1" || host == "[::1]") return true;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host == listening.host;
}

// The part of `path` that the {placeholder} of `pattern` stands for ("" for a pattern without
// one), or nothing when `path` does not match. A placeholder stands for at least one byte.
std::optional<std::string_view> matchEndpointPath(std::string_view pattern, std::string_view path) {
  const size_t open = pattern.find('{');
  if (open == std::string_view::npos) {
    if (pattern != path) return std::nullopt;
    return std::string_view();
  }
  const std::string_view prefix = pattern.substr(0, open);
  const std::string_view suffix = pattern.substr(pattern.find('}', open) + 1);
  if (path.size() <= prefix.size() + suffix.size() || !path.starts_with(prefix) || !path.ends_with(suffix)) {
    return std::nullopt;
  }
  return path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
}

// Whether `method` is one of `methods` ("GET", "PATCH, DELETE"); HEAD goes where GET does.
bool allowsMethod(std::string_view methods, std::string_view method) {
  if (method == "HEAD") method = "GET";
  while (!methods.empty()) {
    const size_t comma = methods.find(", ");
    if (methods.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    methods.remove_prefix(comma + 2);
  }
  return false;
}

}  // namespace

// Refuses what a web page the operator happens to visit could make the browser send here
// (issue 18): reads through DNS rebinding (a foreign Host) when no token protects the
// listener, and cross-site mutations: a preflight gets no CORS grant, a mutation must carry
// no foreign Origin and must not be a "simple" request (a browser sends JSON or a custom
// header only after a preflight, which fails).
bool AdminFilter::refuseCrossSite(const core::RequestHead& head) {
  const config::SocketAddress& listening = factory_.live_.config->admin.address;
  const std::string_view host = head.headers.get("host");
  if (!factory_.tokenDigest_ && !host.empty() && !ownHost(hostWithoutPort(host), listening)) {
    callbacks().sendLocalReply(421, fmt::format("Host '{}' is not this admin listener (use localhost or {})",
                                                host, listening.str()));
    return true;
  }
  const std::string_view method = head.method;
  if (method == "GET" || method == "HEAD") return false;
  if (method == "OPTIONS") {
    callbacks().sendLocalReply(403, "the admin listener grants no cross-origin access");
    return true;
  }
  if (head.headers.has("origin")) {
    const std::string_view origin = head.headers.get("origin");
    std::string_view port;
    const std::string_view originHost =
        origin.starts_with("http://") ? hostWithoutPort(origin.substr(7), &port) : std::string_view();
    if (originHost.empty() || !ownHost(originHost, listening) || port != std::to_string(listening.port)) {
      callbacks().sendLocalReply(403, fmt::format("cross-origin request from '{}' refused", origin));
      return true;
    }
  }
  const std::string_view type = head.headers.get("content-type");
  const bool json = type.size() >= 16 && core::equalsIgnoreCase(type.substr(0, 16), "application/json");
  if (!json && !head.headers.has("x-requested-by") && !head.headers.has("authorization")) {
    callbacks().sendLocalReply(403,
                               fmt::format("{} needs Content-Type: application/json or an X-Requested-By "
                                           "header (protection against cross-site requests)",
                                           method));
    return true;
  }
  return false;
}

core::FilterStatus AdminFilter::onRequest() {
  core::RequestHead& head = callbacks().requestHead();
  if (refuseCrossSite(head)) return core::FilterStatus::Stop;
  // The dashboard page itself holds nothing secret, and a browser cannot send a header
  // when it opens a page: it is served without the token and reads it from #token=... to
  // send it with every request it makes.
  const bool page = head.path() == "/server" && (head.method == "GET" || head.method == "HEAD");
  if (factory_.tokenDigest_ && !page) {
    std::string_view auth = head.headers.get("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool bearer =
        auth.size() > kBearer.size() && core::equalsIgnoreCase(auth.substr(0, kBearer.size()), kBearer);
    if (!bearer || filters::digestKey(auth.substr(kBearer.size())) != *factory_.tokenDigest_) {
      callbacks().sendLocalReply(401, "the admin listener needs Authorization: Bearer <admin token>");
      return core::FilterStatus::Stop;
    }
  }
  const std::string_view path = head.path();
  const std::string_view method = head.method;
  for (const Endpoint& endpoint : endpoints()) {
    const std::optional<std::string_view> argument = matchEndpointPath(endpoint.path, path);
    if (!argument) continue;
    if (!allowsMethod(endpoint.methods, method)) {
      callbacks().sendLocalReply(
          405, fmt::format("{} {} is not allowed here (use {})", method, path, endpoint.methods));
      return core::FilterStatus::Stop;
    }
    endpoint.answer(*this, method, *argument);
    return core::FilterStatus::Stop;
  }
  callbacks().sendLocalReply(404, fmt::format("no admin endpoint {} (GET /help lists them)", path));
  return core::FilterStatus::Stop;
}

const std::vector<AdminFilter::Endpoint>& AdminFilter::endpoints() {
  // The store endpoints' key (in /keys/{key}/metrics and /metrics/{key}) is %-decoded; a
  // base64url key never holds '/'.
  auto keyMetrics = [](AdminFilter& self, std::string_view, std::string_view key) {
    auto decoded = filters::percentDecode(key, false);
    if (!decoded) {
      self.callbacks().sendLocalReply(400, "malformed %-escape in the key");
      return;
    }
    self.storeRequest(self.factory_.keyMetrics_, std::move(*decoded));
  };
  auto clusters = [](AdminFilter& self, std::string_view, std::string_view) {
    self.json(200, self.factory_.stats_.clusters());
  };
  auto keys = [](AdminFilter& self, std::string_view, std::string_view) {
    self.storeRequest(self.factory_.listKeys_);
  };
  auto logs = [](AdminFilter& self, std::string_view, std::string_view) {
    self.storeRequest(self.factory_.viewLogs_);
  };
  static const std::vector<Endpoint> table = {
      {"/server", "GET", "the live dashboard (HTML; with a token, open it as /server#token=...)",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.callbacks().sendLocalReply(200, "text/html; charset=utf-8", std::string(kDashboardHtml));
       }},
      {"/stats", "GET", "every counter and latency summary, summed over workers (JSON)",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.json(200, self.factory_.stats_.stats());
       }},
      {"/stats/prometheus", "GET", "the same counters in Prometheus text format 0.0.4",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.callbacks().sendLocalReply(200, "text/plain; version=0.0.4; charset=utf-8",
                                         self.factory_.stats_.prometheus());
       }},
      {"/stats/history", "GET", "the status mix per second over the last 5 minutes",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.json(200, self.factory_.stats_.history());
       }},
      {"/clusters", "GET",
       "every cluster and host: health, last check, ejections, connections, rps, statuses, p50/p99",
       clusters},
      {"/server_stats", "GET", "= /clusters (the original's name)", clusters},
      {"/config_dump", "GET", "the config in force (secrets masked), its generation and the last reload",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.callbacks().sendLocalReply(200, "application/json",
                                         liveConfigDump(self.factory_.live_).dump(2) + "\n");
       }},
      {"/reload", "POST", "applies the config file now and says how it went",
       [](AdminFilter& self, std::string_view, std::string_view) {
         if (!self.factory_.reload_) {
           self.callbacks().sendLocalReply(503, "this gateway cannot reload");
           return;
         }
         const config::ReloadAttempt attempt = self.factory_.reload_();
         self.json(attempt.ok ? 200 : 400, reloadAttemptJson(attempt));
       }},
      {"/ready", "GET", "200 when serving, 503 while draining (for load balancers)",
       [](AdminFilter& self, std::string_view, std::string_view) {
         const bool draining = self.factory_.stats_.draining();
         self.json(draining ? 503 : 200, Json{{"ready", !draining}});
       }},
      {"/status", "GET", "the original's status: ok or draining",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.json(200, Json{{"status", self.factory_.stats_.draining() ? "draining" : "ok"},
                             {"service", "flowguard"}});
       }},
      {"/metrics", "GET", "the original's summary of requests and statuses",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.json(200, self.factory_.stats_.summary());
       }},
      {"/healthcheck/fail", "POST", "starts draining: /ready answers 503",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.factory_.stats_.setDraining(true);
         self.json(200, Json{{"draining", true}});
       }},
      {"/healthcheck/ok", "POST", "stops draining",
       [](AdminFilter& self, std::string_view, std::string_view) {
         self.factory_.stats_.setDraining(false);
         self.json(200, Json{{"draining", false}});
       }},
      {"/keys", "GET", "every API key: name, plan, prefix, usage (never the key)", keys},
      {"/all_keys", "GET", "= /keys (the original's name)", keys},
      {"/logs", "GET", "the newest request log records (?limit=N)", logs},
      {"/view_logs", "GET", "= /logs (the original's name)", logs},
      {"/keys/{key}/metrics", "GET", "one key's usage, by the key itself", keyMetrics},
      {"/keys/{id}", "PATCH, DELETE", "PATCH: changes a key's name or plan; DELETE: revokes it",
       [](AdminFilter& self, std::string_view method, std::string_view) {
         self.storeRequest(method == "PATCH" ? self.factory_.updateKey_ : self.factory_.revokeKey_);
       }},
      {"/metrics/{key}", "GET", "= /keys/{key}/metrics (the original's name)", keyMetrics},
      {"/help", "GET", "this list",
       [](AdminFilter& self, std::string_view, std::string_view) {
         Json list = Json::array();
         for (const Endpoint& e : endpoints()) {
           list.push_back(Json{{"path", e.path}, {"methods", e.methods}, {"help", e.help}});
         }
         self.json(200, Json{{"endpoints", std::move(list)}});
       }},
  };
  return table;
}

void AdminFilter::onRequestBody(std::string_view data, bool endStream, const core::HeaderMap*) {
  if (handler_) handler_->onBody(data, endStream);
}

void AdminFilter::onComplete(const core::StreamInfo&) {
  handler_.reset();
}

}  // namespace flowguard::admin
