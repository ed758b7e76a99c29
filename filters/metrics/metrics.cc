#include "filters/metrics/metrics.h"

#include "core/status_class.h"
#include "filters/path_redaction.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <uv.h>
#include <nlohmann/json.hpp>

namespace flowguard::filters {

namespace {

constexpr size_t kLogFlushBytes = 32 * 1024;
constexpr uint64_t kLogFlushMs = 1000;

void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  // Single writer (the owning worker): a plain load + store, no locked instruction.
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

uint64_t get(const std::atomic<uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

}  // namespace

// ---- counters -----------------------------------------------------------------------------

void StatusCounters::record(const core::StreamInfo& info) {
  bump(requests);
  int status = info.responseStatus;
  if (info.downstreamReset) bump(resets);
  core::countStatus(
      status, [](std::atomic<uint64_t>& c) { bump(c); }, status2xx, status3xx, status4xx, status429,
      status5xx);
  if (!info.localReplyReason.empty()) bump(localReplies);
  bump(bytesIn, info.requestBodyBytes);
  bump(bytesOut, info.responseBodyBytes);
}

void CountersView::add(const StatusCounters& c) {
  requests += get(c.requests);
  status2xx += get(c.status2xx);
  status3xx += get(c.status3xx);
  status4xx += get(c.status4xx);
  status429 += get(c.status429);
  status5xx += get(c.status5xx);
  localReplies += get(c.localReplies);
  resets += get(c.resets);
  bytesIn += get(c.bytesIn);
  bytesOut += get(c.bytesOut);
}

void CountersView::merge(const CountersView& c) {
  requests += c.requests;
  status2xx += c.status2xx;
  status3xx += c.status3xx;
  status4xx += c.status4xx;
  status429 += c.status429;
  status5xx += c.status5xx;
  localReplies += c.localReplies;
  resets += c.resets;
  bytesIn += c.bytesIn;
  bytesOut += c.bytesOut;
}

StatusCounters& MetricsShard::series(SeriesTable& table, std::string_view name, uint32_t limit) {
  if (table.last != nullptr && name == table.lastName) return *table.last;
  SeriesMap& map = table.map;
  auto it = map.find(name);  // the worker is the only writer: no lock to look up
  if (it == map.end()) {
    std::string_view key = map.size() >= limit ? std::string_view("other") : name;
    it = map.find(key);
    if (it == map.end()) {
      std::lock_guard<std::mutex> guard(seriesLock_);
      it = map.emplace(std::string(key), std::make_unique<StatusCounters>()).first;
    }
  }
  table.lastName = it->first;
  table.last = it->second.get();
  return *table.last;
}

void MetricsShard::record(const core::StreamInfo& info, uint64_t totalMicros) {
  total_.record(info);
  latency_.record(totalMicros);
  if (info.upstreamHeadersMicros > 0) upstreamLatency_.record(info.upstreamHeadersMicros);
  keySeries(info).record(info);
  if (!info.upstreamHost.empty()) series(byUpstream_, info.upstreamHost, 10'000).record(info);
  if (!info.routeName.empty()) series(byRoute_, info.routeName, 10'000).record(info);
  if (!info.clusterName.empty()) series(byCluster_, info.clusterName, 10'000).record(info);
  // Reasons may quote the request ("no route for GET /x"): bounded like the key series.
  if (!info.localReplyReason.empty()) series(byReason_, info.localReplyReason, maxKeySeries_).record(info);
}

StatusCounters& MetricsShard::keySeries(const core::StreamInfo& info) {
  if (!info.apiKey) return series(byKey_, "anonymous", maxKeySeries_);
  const std::string& id = info.apiKey->id;
  if (byKey_.last != nullptr && byKey_.lastName == id) return *byKey_.last;
  const bool known = byKey_.map.contains(id);
  StatusCounters& counters = series(byKey_, id, maxKeySeries_);
  if (!known && byKey_.map.contains(id)) {  // new, and not folded into "other"
    std::lock_guard<std::mutex> guard(seriesLock_);
    keyNames_.emplace(id, info.apiKey->name);
  }
  return counters;
}

std::string_view MetricsShard::keyName(std::string_view id) const {
  auto it = keyNames_.find(std::string(id));
  return it == keyNames_.end() ? std::string_view() : std::string_view(it->second);
}

void MetricsShard::addTo(MetricsSnapshot& snapshot, Scope scope) const {
  snapshot.total.add(total_);
  latency_.addTo(snapshot.latency);
  upstreamLatency_.addTo(snapshot.upstreamLatency);
  snapshot.latencySumUs += latency_.sum();
  snapshot.upstreamLatencySumUs += upstreamLatency_.sum();
  if (scope == Scope::Totals) return;
  std::lock_guard<std::mutex> guard(seriesLock_);
  if (scope == Scope::Everything) {
    for (const auto& [name, counters] : byKey_.map) snapshot.byKey[name].add(*counters);
  }
  for (const auto& [name, counters] : byUpstream_.map) snapshot.byUpstream[name].add(*counters);
  for (const auto& [name, counters] : byRoute_.map) snapshot.byRoute[name].add(*counters);
  for (const auto& [name, counters] : byCluster_.map) snapshot.byCluster[name].add(*counters);
  for (const auto& [name, counters] : byReason_.map)
    snapshot.localRepliesByReason[name] += get(counters->localReplies);
}

MetricsShard& MetricsRegistry::shardFor(const void* worker) {
  std::lock_guard<std::mutex> guard(lock_);
  for (size_t i = 0; i < owners_.size(); ++i) {
    if (owners_[i] == worker) return *shards_[i];
  }
  shards_.push_back(std::make_unique<MetricsShard>(maxKeySeries_));
  owners_.push_back(worker);
  return *shards_.back();
}

MetricsSnapshot MetricsRegistry::snapshot() const {
  MetricsSnapshot snapshot;
  std::lock_guard<std::mutex> guard(lock_);
  for (const auto& shard : shards_) shard->addTo(snapshot);
  return snapshot;
}

MetricsSnapshot MetricsRegistry::totals() const {
  MetricsSnapshot snapshot;
  std::lock_guard<std::mutex> guard(lock_);
  for (const auto& shard : shards_) shard->addTo(snapshot, MetricsShard::Scope::Totals);
  return snapshot;
}

MetricsSnapshot MetricsRegistry::withoutKeys() const {
  MetricsSnapshot snapshot;
  std::lock_guard<std::mutex> guard(lock_);
  for (const auto& shard : shards_) shard->addTo(snapshot, MetricsShard::Scope::AllButKeys);
  return snapshot;
}

void MetricsShard::addKeysTo(std::unordered_map<std::string_view, CountersView>& into) const {
  for (const auto& [name, counters] : byKey_.map) into[name].add(*counters);
}

std::vector<MetricsRegistry::KeyCounters> MetricsRegistry::topKeys(size_t n) const {
  // Summed under every shard's series lock, with names borrowed from the shards: no string
  // is copied but the n that are returned. Workers wait on these locks only to add a new
  // key series, for the few milliseconds this takes with thousands of keys.
  std::lock_guard<std::mutex> guard(lock_);
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(shards_.size());
  for (const auto& shard : shards_) locks.emplace_back(shard->seriesMutex());
  std::unordered_map<std::string_view, CountersView> sums;
  for (const auto& shard : shards_) shard->addKeysTo(sums);
  std::vector<const std::pair<const std::string_view, CountersView>*> order;
  order.reserve(sums.size());
  for (const auto& entry : sums) order.push_back(&entry);
  const size_t top = std::min(n, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                    [](const auto* a, const auto* b) {
                      return a->second.requests != b->second.requests
                                 ? a->second.requests > b->second.requests
                                 : a->first < b->first;
                    });
  std::vector<KeyCounters> out;
  out.reserve(top);
  for (size_t i = 0; i < top; ++i) {
    KeyCounters entry{std::string(order[i]->first), {}, order[i]->second};
    for (const auto& shard : shards_) {
      if (std::string_view name = shard->keyName(entry.id); !name.empty()) entry.name = std::string(name);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

// ---- the filter ---------------------------------------------------------------------------

std::shared_ptr<MetricsRegistry> metricsRegistryOf(const std::shared_ptr<FilterState>& state) {
  return std::dynamic_pointer_cast<MetricsRegistry>(state);
}

MetricsFilterFactory::MetricsFilterFactory(const MetricsSettings& config, FilterContext& context)
    : config_(config),
      listener_(context.listener),
      perRoute_(context.name, context.listener),
      registry_(context.stateAs<MetricsRegistry>()),
      shard_(registry_->shardFor(&context.resources.dispatcher)),
      resources_(context.resources),
      keyPathPrefixes_(keyPathPrefixes(context.listener)) {
  if (config.accessLog.enabled) {
    if (config.accessLog.path == "-") {
      logFd_ = STDOUT_FILENO;
    } else {
      logFd_ = ::open(config.accessLog.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ownsLogFd_ = logFd_ >= 0;
      if (logFd_ < 0) {
        throw std::runtime_error(
            fmt::format("access log {}: {}", config.accessLog.path, std::strerror(errno)));
      }
    }
  }
}

MetricsFilterFactory::~MetricsFilterFactory() {
  flushLog();
  if (ownsLogFd_) ::close(logFd_);
}

std::unique_ptr<core::Filter> MetricsFilterFactory::create() {
  return std::make_unique<MetricsFilter>(*this);
}

void MetricsFilterFactory::flushLog() {
  size_t written = 0;
  while (written < logBuffer_.size()) {
    ssize_t n = ::write(logFd_, logBuffer_.data() + written, logBuffer_.size() - written);
    if (n <= 0) break;  // a full disk must not stop the gateway; the lines are lost
    written += static_cast<size_t>(n);
  }
  logBuffer_.clear();
}

void MetricsFilterFactory::log(const core::RequestHead& head, const core::StreamInfo& info,
                               uint64_t totalMicros) {
  double sample = config_.accessLog.sample;
  if (sample < 1.0) {
    // Deterministic sampling: every (1/sample)-th request.
    ++sampleCounter_;
    auto every = static_cast<uint64_t>(1.0 / sample + 0.5);
    if (every > 1 && sampleCounter_ % every != 0) return;
  }
  nlohmann::json line = {
      {"time", std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()},
      {"listener", listener_.name},
      {"request_id", info.requestId},
      {"client", info.downstreamAddress},
      {"key", info.apiKey ? info.apiKey->prefix : ""},
      {"key_name", info.apiKey ? info.apiKey->name : ""},
      {"method", head.method},
      {"path", std::string(redactKeyPath(head.path(), keyPathPrefixes_, redactedPath_))},
      {"status", info.responseStatus},
      {"upstream", info.upstreamHost},
      {"latency_us", totalMicros},
      {"upstream_latency_us", info.upstreamHeadersMicros},
      {"bytes_in", info.requestBodyBytes},
      {"bytes_out", info.responseBodyBytes},
      {"local_reply", info.localReplyReason},
      {"reset", info.downstreamReset},
  };
  logBuffer_ += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  logBuffer_ += '\n';
  uint64_t now = uv_now(resources_.dispatcher.loop());
  if (logBuffer_.size() >= kLogFlushBytes || now - lastFlushMs_ >= kLogFlushMs) {
    flushLog();
    lastFlushMs_ = now;
  }
}

core::FilterStatus MetricsFilter::onRequest() {
  return core::FilterStatus::Continue;
}

void MetricsFilter::onComplete(const core::StreamInfo& info) {
  if (!factory_.perRoute_.empty()) {
    // Looked up at the end, so that an answer a filter before this one gave (a 401, a 429)
    // is not counted on a route that turns the filter off either.
    const config::RoutePerFilter* entry =
        factory_.perRoute_.find(callbacks().requestHead(), callbacks().streamInfo());
    if (entry != nullptr && entry->disabled) return;
  }
  auto micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - info.start)
          .count());
  factory_.shard_.record(info, micros);
  if (factory_.logFd_ >= 0) factory_.log(callbacks().requestHead(), info, micros);
}

}  // namespace flowguard::filters
