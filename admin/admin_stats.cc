#include "admin/admin_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/wall_clock.h"
#include "filters/gateway_summary.h"

namespace flowguard::admin {

namespace {

using Json = nlohmann::json;
using Histogram = std::array<uint64_t, core::LatencyHistogram::kBuckets>;

constexpr size_t kStatusHistory = 300;  // seconds
constexpr size_t kHostHistory = 60;     // seconds
constexpr size_t kBusiestKeys = 20;
// Prometheus bucket bounds, in seconds.
constexpr double kBucketBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

int64_t unixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string isoTime(int64_t ms) {
  return core::isoTimeMs(ms);
}

double ms(uint64_t micros) {
  return static_cast<double>(micros) / 1000.0;
}

Json countersJson(const filters::CountersView& c) {
  return Json{{"requests", c.requests},
              {"2xx", c.status2xx},
              {"3xx", c.status3xx},
              {"4xx", c.status4xx},
              {"429", c.status429},
              {"5xx", c.status5xx},
              {"local_replies", c.localReplies},
              {"resets", c.resets},
              {"bytes_in", c.bytesIn},
              {"bytes_out", c.bytesOut}};
}

uint64_t load(const std::atomic<uint64_t>& v) {
  return v.load(std::memory_order_relaxed);
}

Histogram hostHistogram(const upstream::HostState& host) {
  Histogram h{};
  host.latency.addTo(h);
  return h;
}

// Prometheus label values: backslash, double quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// A histogram in the text format: cumulative _bucket lines at kBucketBounds, +Inf, _sum, _count.
void writeHistogram(std::string& out, std::string_view name, std::string_view labels, const Histogram& h,
                    uint64_t sumMicros) {
  using core::LatencyHistogram;
  uint64_t total = 0;
  for (uint64_t n : h) total += n;
  const std::string sep = labels.empty() ? "" : ",";
  size_t bucket = 0;
  uint64_t cumulative = 0;
  for (double bound : kBucketBounds) {
    const auto boundMicros = static_cast<uint64_t>(bound * 1e6);
    // A bucket counts under `le` when all of it lies below the bound.
    while (bucket < h.size() && LatencyHistogram::upperBound(static_cast<int>(bucket)) <= boundMicros) {
      cumulative += h[bucket++];
    }
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bound, cumulative);
  }
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, total);
  const std::string braces = labels.empty() ? "" : fmt::format("{{{}}}", labels);
  out += fmt::format("{}_sum{} {}\n", name, braces, static_cast<double>(sumMicros) / 1e6);
  out += fmt::format("{}_count{} {}\n", name, braces, total);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// The declared fields of `owner` (core::FieldStatDecl), each under its name.
template <class Owner>
void addFieldStats(Json& out, std::span<const core::FieldStatDecl<Owner>> decls, const Owner& owner) {
  for (const auto& decl : decls) out[std::string(decl.name)] = decl.read(owner);
}

// One Prometheus family per declared field, a sample per owner (its labels, or none).
template <class Owner>
void writeFieldStats(std::string& out, std::span<const core::FieldStatDecl<Owner>> decls,
                     const std::vector<std::pair<std::string, const Owner*>>& owners) {
  for (const auto& decl : decls) {
    header(out, decl.prometheus, decl.gauge ? "gauge" : "counter", decl.help);
    for (const auto& [labels, owner] : owners) {
      out += labels.empty() ? fmt::format("{} {}\n", decl.prometheus, decl.read(*owner))
                            : fmt::format("{}{{{}}} {}\n", decl.prometheus, labels, decl.read(*owner));
    }
  }
}

Json connectionsJson(const core::ConnectionLimit& limit) {
  Json rejected = Json::object();
  for (size_t r = 0; r < core::kRejectReasons; ++r) {
    const auto reason = static_cast<core::RejectReason>(r);
    rejected[core::rejectReasonName(reason)] = limit.rejected(reason);
  }
  Json out = {{"rejected_connections", limit.rejectedTotal()}, {"rejected_by_reason", std::move(rejected)}};
  addFieldStats<core::ConnectionLimit>(out, core::kConnectionStats, limit);
  return out;
}

// {counter: value} for declared counters (core/stat_set.h).
Json declaredStatsJson(const core::StatSet& stats) {
  Json counters = Json::object();
  const auto decls = stats.decls();
  for (size_t i = 0; i < decls.size(); ++i) counters[std::string(decls[i].name)] = stats.value(i);
  return counters;
}

// {listener: {filter: {counter: value}}} for the plugged filters, from their declarations.
Json pluggedFilterStatsJson(const std::vector<ListenerSources>& listeners) {
  Json out = Json::object();
  for (const ListenerSources& l : listeners) {
    for (const ListenerSources::FilterStats& f : l.filterStats)
      out[l.name][f.filter] = declaredStatsJson(*f.stats);
  }
  return out;
}

// Prometheus counter families made from declared counters, gathered over their owners (the
// listeners that have a filter, the clusters) before they are written, so that a family's
// samples follow its one header: flowguard_<prefix>_<counter>_total{<owner labels>}, or for a
// counter declared in a family, flowguard_<prefix>_<family>_total{<owner labels>,<label>}.
class DeclaredFamilies {
 public:
  void add(std::string_view prefix, const std::string& labels, const core::StatSet& stats) {
    const auto decls = stats.decls();
    for (size_t i = 0; i < decls.size(); ++i) {
      const core::StatDecl& decl = decls[i];
      std::string name =
          fmt::format("flowguard_{}_{}_total", prefix, decl.family.empty() ? decl.name : decl.family);
      auto family =
          std::find_if(families_.begin(), families_.end(), [&](const Family& x) { return x.name == name; });
      if (family == families_.end()) family = families_.insert(families_.end(), Family{name, decl.help, {}});
      family->samples += fmt::format("{}{{{}{}{}}} {}\n", name, labels, decl.label.empty() ? "" : ",",
                                     decl.label, stats.value(i));
    }
  }
  void writeTo(std::string& out) const {
    for (const Family& family : families_) {
      header(out, family.name, "counter", family.help);
      out += family.samples;
    }
  }

 private:
  struct Family {
    std::string name;
    std::string_view help;
    std::string samples;
  };
  std::vector<Family> families_;
};

}  // namespace

ListenerSources listenerSources(const config::ListenerConfig& listener,
                                const std::vector<filters::FilterSharedState>& entries) {
  ListenerSources sources{listener.name, nullptr, nullptr, {}};
  for (size_t f = 0; f < entries.size() && f < listener.filters.size(); ++f) {
    const filters::FilterSharedState& entry = entries[f];
    if (auto registry = filters::metricsRegistryOf(entry.state)) sources.metrics = std::move(registry);
    if (entry.stats && !entry.stats->decls().empty()) {
      sources.filterStats.push_back({listener.filters[f].name, entry.stats});
    }
  }
  return sources;
}

AdminStats::AdminStats(StatsSources sources) : sources_(std::move(sources)) {}

void AdminStats::setSources(StatsSources sources) {
  sources_ = std::move(sources);
  std::set<const upstream::HostState*> current;
  for (const auto& [name, cluster] : *sources_.clusters) {
    for (const auto& host : cluster->hosts()) current.insert(host.get());
  }
  std::erase_if(hosts_, [&](const auto& entry) { return !current.contains(entry.first); });
}

filters::MetricsSnapshot AdminStats::totalSnapshot() const {
  return filters::sumTotals(summarySources().metrics);
}

filters::SummarySources AdminStats::summarySources() const {
  filters::SummarySources sources;
  sources.clusters = sources_.clusters;
  for (const ListenerSources& l : sources_.listeners) {
    if (l.metrics) sources.metrics.push_back(l.metrics);
  }
  return sources;
}

void AdminStats::sample() {
  const int64_t now = unixSeconds();
  // Status mix of the last second, from the totals of every listener.
  const filters::CountersView totals = totalSnapshot().total;
  // The first sample counts everything since start-up (the previous totals start at zero).
  // A reload that removed a listener's metrics lowers the totals: a second then counts as 0.
  auto since = [](uint64_t now, uint64_t before) { return now >= before ? now - before : 0; };
  statusHistory_.push_back(StatusPoint{
      now, since(totals.requests, lastTotals_.requests), since(totals.status2xx, lastTotals_.status2xx),
      since(totals.status4xx, lastTotals_.status4xx), since(totals.status429, lastTotals_.status429),
      since(totals.status5xx, lastTotals_.status5xx)});
  if (statusHistory_.size() > kStatusHistory) statusHistory_.pop_front();
  lastTotals_ = totals;

  // Per host: requests and the latency histogram of the last second.
  for (const auto& [name, cluster] : *sources_.clusters) {
    for (const auto& host : cluster->hosts()) {
      HostHistory& history = hosts_[host.get()];
      const uint64_t requests = host->stats.value(upstream::HostStat::Requests);
      const Histogram latency = hostHistogram(*host);
      Histogram delta{};
      for (size_t i = 0; i < delta.size(); ++i) delta[i] = latency[i] - history.lastLatency[i];
      history.rps = static_cast<double>(requests - history.lastRequests);
      history.points.push_back(
          HostHistory::Point{now, history.rps, ms(core::LatencyHistogram::percentileOf(delta, 0.99))});
      if (history.points.size() > kHostHistory) history.points.pop_front();
      history.lastRequests = requests;
      history.lastLatency = latency;
    }
  }
}

Json AdminStats::stats() const {
  Json out;
  const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  out["uptime_s"] = std::round(uptime * 10) / 10;
  out["version"] = "0.1.0";
  out["workers"] = sources_.workers;
  out["draining"] = draining_;
  if (sources_.live != nullptr) {
    out["config"] = Json{{"generation", sources_.live->generation},
                         {"loaded_at", sources_.live->loadedAt},
                         {"reloads_ok", sources_.live->reloadsOk},
                         {"reloads_failed", sources_.live->reloadsFailed},
                         {"reloads_ok_by_trigger", sources_.live->reloadsOkByTrigger},
                         {"file_saves_unchanged", sources_.live->fileSavesUnchanged}};
  }

  filters::CountersView totals;
  Histogram latency{};
  // The busiest keys of every listener, merged (most set-ups have one listener with keys).
  std::map<std::string, filters::CountersView> byKey;  // by key id
  std::map<std::string, std::string> keyNames;
  Json listeners = Json::object();
  Json rateLimits = Json::object();
  for (const ListenerSources& l : sources_.listeners) {
    if (l.metrics) {
      const filters::MetricsSnapshot s = l.metrics->withoutKeys();
      for (const auto& key : l.metrics->topKeys(kBusiestKeys)) {
        byKey[key.id].merge(key.counters);
        if (!key.name.empty()) keyNames[key.id] = key.name;
      }
      totals.merge(s.total);
      for (size_t i = 0; i < latency.size(); ++i) latency[i] += s.latency[i];
      Json listener = countersJson(s.total);
      listener["latency_ms"] = filters::latencyPercentilesMs(s.latency);
      listener["upstream_latency_ms"] = filters::latencyPercentilesMs(s.upstreamLatency);
      Json routes = Json::object();
      for (const auto& [name, c] : s.byRoute) routes[name] = countersJson(c);
      listener["routes"] = std::move(routes);
      listener["local_replies_by_reason"] = s.localRepliesByReason;
      listeners[l.name] = std::move(listener);
    }
    // The rate limiter's counters also keep the key they had before filters had folders.
    for (const ListenerSources::FilterStats& f : l.filterStats) {
      if (f.filter == "rate_limit") rateLimits[l.name] = declaredStatsJson(*f.stats);
    }
  }
  out["totals"] = countersJson(totals);
  out["latency_ms"] = filters::latencyPercentilesMs(latency);
  out["listeners"] = std::move(listeners);
  out["rate_limit"] = std::move(rateLimits);
  out["filters"] = pluggedFilterStatsJson(sources_.listeners);

  Json listenerConnections = Json::object();
  for (const ListenerSources& l : sources_.listeners) {
    if (l.connections) listenerConnections[l.name] = connectionsJson(*l.connections);
  }
  out["listener_connections"] = std::move(listenerConnections);
  if (sources_.overload) {
    const core::OverloadState& o = *sources_.overload;
    out["overloaded"] = o.isOverloaded();
    out["connections"] = connectionsJson(o.connections);
    out["overload"] = Json{{"overloaded", o.isOverloaded()},
                           {"rss_bytes", load(o.rssBytes)},
                           {"memory_limit_bytes", load(o.memoryLimit)},
                           {"shed_requests", load(o.shedRequests)},
                           {"transitions", load(o.transitions)},
                           {"heap_releases", load(o.heapReleases)}};
  } else {
    out["overloaded"] = false;
  }

  Json clusters = Json::object();
  for (const auto& [name, cluster] : *sources_.clusters) {
    int healthy = 0;
    for (const auto& host : cluster->hosts()) healthy += filters::hostHealth(*host) == "healthy" ? 1 : 0;
    Json counters = declaredStatsJson(cluster->stats());
    counters["hosts_healthy"] = healthy;
    counters["hosts_total"] = cluster->hosts().size();
    clusters[name] = std::move(counters);
  }
  out["clusters"] = std::move(clusters);

  // The busiest keys, by requests.
  std::vector<const std::pair<const std::string, filters::CountersView>*> keys;
  keys.reserve(byKey.size());
  for (const auto& entry : byKey) keys.push_back(&entry);
  const size_t top = std::min(keys.size(), kBusiestKeys);
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(top), keys.end(),
                    [](const auto* a, const auto* b) { return a->second.requests > b->second.requests; });
  keys.resize(top);
  Json busiest = Json::array();
  for (const auto* entry : keys) {
    const auto& [id, c] = *entry;
    auto name = keyNames.find(id);
    busiest.push_back(Json{{"id", id},
                           {"name", name != keyNames.end() ? name->second : id},
                           {"requests", c.requests},
                           {"2xx", c.status2xx},
                           {"4xx", c.status4xx},
                           {"429", c.status429},
                           {"5xx", c.status5xx},
                           {"ratio_429", c.requests ? static_cast<double>(c.status429) / c.requests : 0.0}});
  }
  out["keys"] = std::move(busiest);

  if (sources_.store) {
    const store::StoreStats s = sources_.store->stats();
    Json store = {{"kind", sources_.store->kind()}, {"available", s.available}};
    addFieldStats<store::StoreStats>(store, store::kStoreStats, s);
    out["store"] = std::move(store);
  } else {
    out["store"] = nullptr;
  }
  return out;
}

Json AdminStats::clusters() const {
  Json list = Json::array();
  for (const config::ClusterConfig& config : sources_.live->config->clusters) {
    auto it = sources_.clusters->find(config.name);
    if (it == sources_.clusters->end()) continue;
    Json hosts = Json::array();
    for (const auto& host : it->second->hosts()) {
      const upstream::HostState& h = *host;
      const Histogram latency = hostHistogram(h);
      const uint64_t requests = h.stats.value(upstream::HostStat::Requests);
      const uint64_t failures = h.stats.value(upstream::HostStat::Failures);
      const int64_t lastCheck = h.lastCheckUnixMs.load(std::memory_order_relaxed);
      Json history = Json::array();
      double rps = 0;
      if (auto found = hosts_.find(host.get()); found != hosts_.end()) {
        rps = found->second.rps;
        for (const auto& p : found->second.points)
          history.push_back(Json{{"t", p.t}, {"rps", p.rps}, {"p99_ms", p.p99Ms}});
      }
      Json entry = {{"address", h.address},
                    {"health", filters::hostHealth(h)},
                    {"last_check", lastCheck ? Json(isoTime(lastCheck)) : Json(nullptr)},
                    {"last_check_status", h.lastCheckStatus.load(std::memory_order_relaxed)},
                    {"ejections", h.ejections.load(std::memory_order_relaxed)},
                    {"rps", rps},
                    {"2xx", load(h.status2xx)},
                    {"3xx", load(h.status3xx)},
                    {"4xx", load(h.status4xx)},
                    {"429", load(h.status429)},
                    {"5xx", load(h.status5xx)},
                    {"error_ratio", requests ? static_cast<double>(failures) / requests : 0.0},
                    {"latency_ms",
                     {{"p50", ms(core::LatencyHistogram::percentileOf(latency, 0.5))},
                      {"p99", ms(core::LatencyHistogram::percentileOf(latency, 0.99))}}},
                    {"history", std::move(history)}};
      entry.update(declaredStatsJson(h.stats));
      addFieldStats<upstream::HostState>(entry, upstream::kHostGauges, h);
      hosts.push_back(std::move(entry));
    }
    list.push_back(Json{{"name", config.name}, {"hosts", std::move(hosts)}});
  }
  return Json{{"clusters", std::move(list)}};
}

Json AdminStats::history() const {
  Json points = Json::array();
  for (const StatusPoint& p : statusHistory_) {
    points.push_back(Json{{"t", p.t},
                          {"requests", p.requests},
                          {"2xx", p.s2xx},
                          {"4xx", p.s4xx},
                          {"429", p.s429},
                          {"5xx", p.s5xx}});
  }
  return Json{{"interval_s", 1}, {"points", std::move(points)}};
}

Json AdminStats::summary() const {
  return filters::gatewaySummary(summarySources());
}

std::string AdminStats::prometheus() const {
  std::string out;
  out.reserve(16 * 1024);
  // Per listener: requests by status class, local replies, bytes; latency histograms.
  std::vector<std::pair<std::string, filters::MetricsSnapshot>> snapshots;
  for (const ListenerSources& l : sources_.listeners) {
    if (l.metrics) snapshots.emplace_back(l.name, l.metrics->totals());
  }
  header(out, "flowguard_requests_total", "counter", "Requests answered, by listener and status class.");
  for (const auto& [name, s] : snapshots) {
    const auto& c = s.total;
    for (auto [cls, n] :
         {std::pair{"2xx", c.status2xx}, std::pair{"3xx", c.status3xx},
          std::pair{"4xx", c.status4xx - c.status429}, std::pair{"429", c.status429},
          std::pair{"5xx", c.status5xx},
          std::pair{"other", c.requests - c.status2xx - c.status3xx - c.status4xx - c.status5xx}}) {
      out +=
          fmt::format("flowguard_requests_total{{listener=\"{}\",status=\"{}\"}} {}\n", label(name), cls, n);
    }
  }
  header(out, "flowguard_local_replies_total", "counter",
         "Requests the gateway answered itself, by listener.");
  for (const auto& [name, s] : snapshots) {
    out += fmt::format("flowguard_local_replies_total{{listener=\"{}\"}} {}\n", label(name),
                       s.total.localReplies);
  }
  header(out, "flowguard_received_bytes_total", "counter", "Request body bytes received, by listener.");
  for (const auto& [name, s] : snapshots) {
    out +=
        fmt::format("flowguard_received_bytes_total{{listener=\"{}\"}} {}\n", label(name), s.total.bytesIn);
  }
  header(out, "flowguard_sent_bytes_total", "counter", "Response body bytes sent, by listener.");
  for (const auto& [name, s] : snapshots) {
    out += fmt::format("flowguard_sent_bytes_total{{listener=\"{}\"}} {}\n", label(name), s.total.bytesOut);
  }
  header(out, "flowguard_request_duration_seconds", "histogram",
         "Time from a request's head to the end of its response, by listener.");
  for (const auto& [name, s] : snapshots) {
    writeHistogram(out, "flowguard_request_duration_seconds", fmt::format("listener=\"{}\"", label(name)),
                   s.latency, s.latencySumUs);
  }
  DeclaredFamilies filterFamilies;
  for (const ListenerSources& l : sources_.listeners) {
    for (const ListenerSources::FilterStats& f : l.filterStats) {
      filterFamilies.add(f.filter, fmt::format("listener=\"{}\"", label(l.name)), *f.stats);
    }
  }
  filterFamilies.writeTo(out);

  // Per cluster (from the declarations in upstream/cluster_state.h) and per host.
  DeclaredFamilies clusterFamilies;
  for (const auto& [name, cluster] : *sources_.clusters) {
    clusterFamilies.add("cluster", fmt::format("cluster=\"{}\"", label(name)), cluster->stats());
  }
  clusterFamilies.writeTo(out);
  auto forHosts = [&](auto write) {
    for (const auto& [name, cluster] : *sources_.clusters) {
      for (const auto& host : cluster->hosts()) {
        write(fmt::format("cluster=\"{}\",host=\"{}\"", label(name), label(host->address)), *host);
      }
    }
  };
  header(out, "flowguard_host_healthy", "gauge",
         "1 when the host gets traffic (health checks pass, not ejected).");
  forHosts([&](const std::string& labels, const upstream::HostState& h) {
    out +=
        fmt::format("flowguard_host_healthy{{{}}} {}\n", labels, filters::hostHealth(h) == "healthy" ? 1 : 0);
  });
  std::vector<std::pair<std::string, const upstream::HostState*>> hosts;
  forHosts([&](const std::string& labels, const upstream::HostState& h) { hosts.emplace_back(labels, &h); });
  writeFieldStats<upstream::HostState>(out, upstream::kHostGauges, hosts);
  DeclaredFamilies hostFamilies;
  forHosts([&](const std::string& labels, const upstream::HostState& h) {
    hostFamilies.add("host", labels, h.stats);
  });
  hostFamilies.writeTo(out);
  header(out, "flowguard_host_responses_total", "counter", "Responses from the host, by status class.");
  forHosts([&](const std::string& labels, const upstream::HostState& h) {
    for (auto [cls, n] : {std::pair{"2xx", load(h.status2xx)}, std::pair{"3xx", load(h.status3xx)},
                          std::pair{"4xx", load(h.status4xx) - load(h.status429)},
                          std::pair{"429", load(h.status429)}, std::pair{"5xx", load(h.status5xx)}}) {
      out += fmt::format("flowguard_host_responses_total{{{},status=\"{}\"}} {}\n", labels, cls, n);
    }
  });
  header(out, "flowguard_host_response_seconds", "histogram",
         "Time from sending an attempt to its response head.");
  forHosts([&](const std::string& labels, const upstream::HostState& h) {
    writeHistogram(out, "flowguard_host_response_seconds", labels, hostHistogram(h), h.latency.sum());
  });

  if (sources_.store) {
    const store::StoreStats s = sources_.store->stats();
    header(out, "flowguard_store_up", "gauge", "1 while the key store's database answers.");
    out += fmt::format("flowguard_store_up {}\n", s.available ? 1 : 0);
    writeFieldStats<store::StoreStats>(out, store::kStoreStats, {{"", &s}});
  }
  if (sources_.live != nullptr) {
    header(out, "flowguard_config_generation", "gauge",
           "The configuration in force: 1 at start-up, +1 per applied reload.");
    out += fmt::format("flowguard_config_generation {}\n", sources_.live->generation);
    header(out, "flowguard_config_reloads_total", "counter", "Reload attempts by result.");
    out += fmt::format("flowguard_config_reloads_total{{result=\"ok\"}} {}\n", sources_.live->reloadsOk);
    out +=
        fmt::format("flowguard_config_reloads_total{{result=\"error\"}} {}\n", sources_.live->reloadsFailed);
  }
  std::vector<std::pair<std::string, const core::ConnectionLimit*>> listenerConnections;
  for (const ListenerSources& l : sources_.listeners) {
    if (l.connections)
      listenerConnections.emplace_back(fmt::format("listener=\"{}\"", label(l.name)), l.connections.get());
  }
  writeFieldStats<core::ConnectionLimit>(out, core::kConnectionStats, listenerConnections);
  header(out, "flowguard_connections_rejected_total", "counter",
         "Connections accepted and closed at once, by listener and reason (listener_limit, process_limit, "
         "overloaded).");
  for (const ListenerSources& l : sources_.listeners) {
    if (!l.connections) continue;
    for (size_t r = 0; r < core::kRejectReasons; ++r) {
      const auto reason = static_cast<core::RejectReason>(r);
      out += fmt::format("flowguard_connections_rejected_total{{listener=\"{}\",reason=\"{}\"}} {}\n",
                         label(l.name), core::rejectReasonName(reason), l.connections->rejected(reason));
    }
  }
  if (sources_.overload) {
    const core::OverloadState& o = *sources_.overload;
    header(out, "flowguard_process_connections_active", "gauge",
           "Open downstream connections of the process.");
    out += fmt::format("flowguard_process_connections_active {}\n", o.connections.active());
    header(out, "flowguard_process_connections_max", "gauge",
           "The process-wide connection limit (overload.max_connections; 0 = none).");
    out += fmt::format("flowguard_process_connections_max {}\n", o.connections.max());
    header(out, "flowguard_overloaded", "gauge",
           "1 while memory is above overload.memory_limit (new connections closed, requests shed).");
    out += fmt::format("flowguard_overloaded {}\n", o.isOverloaded() ? 1 : 0);
    header(out, "flowguard_overload_shed_requests_total", "counter",
           "Requests answered 503 while overloaded.");
    out += fmt::format("flowguard_overload_shed_requests_total {}\n", load(o.shedRequests));
    header(out, "flowguard_resident_memory_bytes", "gauge", "Resident set size at the last overload check.");
    out += fmt::format("flowguard_resident_memory_bytes {}\n", load(o.rssBytes));
    header(out, "flowguard_memory_limit_bytes", "gauge", "overload.memory_limit (0 = off).");
    out += fmt::format("flowguard_memory_limit_bytes {}\n", load(o.memoryLimit));
    header(out, "flowguard_heap_releases_total", "counter",
           "Times the allocator's free memory was given back to the system (malloc_trim).");
    out += fmt::format("flowguard_heap_releases_total {}\n", load(o.heapReleases));
  }
  header(out, "flowguard_draining", "gauge", "1 while the gateway reports itself not ready (draining).");
  out += fmt::format("flowguard_draining {}\n", draining_ ? 1 : 0);
  return out;
}

}  // namespace flowguard::admin
