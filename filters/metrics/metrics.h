// `metrics`: counts every request of its listener by status class, API key and upstream
// host, with latency histograms (total and upstream time to first byte), and optionally
// writes a JSON access-log line per request.
//
// Each worker owns its own MetricsShard and is its only writer (relaxed atomic stores, no
// read-modify-write); readers on other threads sum the shards (MetricsRegistry::snapshot).
// Per-key series are bounded by max_key_series; further keys count as "other", so random
// keys cannot grow memory without bound.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/latency_histogram.h"
#include "filters/filter_plugin.h"
#include "filters/worker_resources.h"

namespace flowguard::filters {

using core::LatencyHistogram;

// ---- settings ------------------------------------------------------------------------------
//
//   - name: metrics
//     access_log: { path: /var/log/flowguard/access.log, sample: 0.1 }   # or off (the default); "-": stdout
//     max_key_series: 1000

struct AccessLogSettings {
  bool enabled = false;
  std::string path = "-";  // "-" = stdout
  double sample = 1.0;     // share of requests logged (0..1]
  bool operator==(const AccessLogSettings&) const = default;
};

struct MetricsSettings : config::PluginSettingsOf<MetricsSettings> {
  AccessLogSettings accessLog;
  uint32_t maxKeySeries = 1000;  // per-key series kept; the rest count as "other"
  bool operator==(const MetricsSettings&) const = default;
};

std::shared_ptr<const MetricsSettings> parseMetrics(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dumpMetrics(const MetricsSettings& settings);

struct StatusCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> status2xx{0};
  std::atomic<uint64_t> status3xx{0};
  std::atomic<uint64_t> status4xx{0};
  std::atomic<uint64_t> status429{0};
  std::atomic<uint64_t> status5xx{0};
  std::atomic<uint64_t> localReplies{0};  // answered by the gateway itself
  std::atomic<uint64_t> resets{0};        // client went away before the answer
  std::atomic<uint64_t> bytesIn{0};
  std::atomic<uint64_t> bytesOut{0};
  void record(const core::StreamInfo& info);  // single writer
};

// Plain numbers, summed over workers.
struct CountersView {
  uint64_t requests = 0, status2xx = 0, status3xx = 0, status4xx = 0, status429 = 0, status5xx = 0;
  uint64_t localReplies = 0, resets = 0, bytesIn = 0, bytesOut = 0;
  void add(const StatusCounters& c);
  void merge(const CountersView& c);
};

struct MetricsSnapshot {
  CountersView total;
  std::map<std::string, CountersView> byKey;       // API key name ("anonymous", "other")
  std::map<std::string, CountersView> byUpstream;  // "ip:port"
  std::map<std::string, CountersView> byRoute;     // the router's route names
  std::map<std::string, CountersView> byCluster;
  std::map<std::string, uint64_t> localRepliesByReason;  // bounded like the key series
  std::array<uint64_t, LatencyHistogram::kBuckets> latency{};
  std::array<uint64_t, LatencyHistogram::kBuckets> upstreamLatency{};
  uint64_t latencySumUs = 0;
  uint64_t upstreamLatencySumUs = 0;
  uint64_t latencyPercentileUs(double q) const { return LatencyHistogram::percentileOf(latency, q); }
};

// Lets the series maps be searched with a string_view: no string built per request.
struct SeriesHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using SeriesMap =
    std::unordered_map<std::string, std::unique_ptr<StatusCounters>, SeriesHash, std::equal_to<>>;

// A series map that remembers the series it gave out last: consecutive requests mostly
// share their route, cluster and host (and often their key), and comparing one name costs
// less than hashing it. Series are never erased, so `lastName` (a view of the map's own
// key) stays valid.
struct SeriesTable {
  SeriesMap map;
  std::string_view lastName;
  StatusCounters* last = nullptr;
};

// One worker's counters.
class MetricsShard {
 public:
  explicit MetricsShard(uint32_t maxKeySeries) : maxKeySeries_(maxKeySeries) {}
  void record(const core::StreamInfo& info, uint64_t totalMicros);
  // What addTo copies: the per-key series can be thousands, the others are small.
  enum class Scope { Totals, AllButKeys, Everything };
  void addTo(MetricsSnapshot& snapshot, Scope scope = Scope::Everything) const;
  // Adds each key series' counters to `into` (names point into this shard's map: only valid
  // while `lock` is held, which the caller takes with seriesMutex()).
  void addKeysTo(std::unordered_map<std::string_view, CountersView>& into) const;
  // The display name of a key series (its id is the series' name); "" when unknown. Under
  // seriesMutex(), like addKeysTo.
  std::string_view keyName(std::string_view id) const;
  std::mutex& seriesMutex() const { return seriesLock_; }

 private:
  StatusCounters& series(SeriesTable& table, std::string_view name, uint32_t limit);
  // Per key by its stable id ("static:demo", "key:42"), never by name: names are chosen by
  // clients, and a registered "demo" must not count as the configured demo key.
  StatusCounters& keySeries(const core::StreamInfo& info);

  uint32_t maxKeySeries_;
  StatusCounters total_;
  LatencyHistogram latency_;
  LatencyHistogram upstreamLatency_;
  // Written by the worker only; the lock guards inserts against readers on other threads.
  mutable std::mutex seriesLock_;
  SeriesTable byKey_;
  std::unordered_map<std::string, std::string> keyNames_;  // byKey_ id -> the key's name
  SeriesTable byUpstream_;
  SeriesTable byRoute_;
  SeriesTable byCluster_;
  SeriesTable byReason_;  // localReplies only
};

// All shards of one metrics filter entry (one listener), shared by the workers: the filter's
// state (FilterState), kept across reloads while max_key_series stays the same.
class MetricsRegistry : public FilterState {
 public:
  explicit MetricsRegistry(uint32_t maxKeySeries) : maxKeySeries_(maxKeySeries) {}
  // The shard of one worker, `worker` being anything that identifies it for the life of
  // the process (its Dispatcher). Made on first use; the factories of later config
  // generations on the same worker get the same shard, so reloads neither add shards nor
  // lose counts, and each shard keeps a single writer.
  MetricsShard& shardFor(const void* worker);
  MetricsSnapshot snapshot() const;
  // Totals and latency histograms only, without the per-key/route/host series.
  MetricsSnapshot totals() const;
  // Everything except the per-key series.
  MetricsSnapshot withoutKeys() const;
  struct KeyCounters {
    std::string id;    // "static:demo", "key:42", "anonymous" or "other"
    std::string name;  // the key's name ("" for anonymous and other)
    CountersView counters;
  };
  // The `n` keys with the most requests, summed over workers, busiest first.
  std::vector<KeyCounters> topKeys(size_t n) const;

 private:
  uint32_t maxKeySeries_;
  mutable std::mutex lock_;  // start-up, reloads and reads only
  std::vector<std::unique_ptr<MetricsShard>> shards_;
  std::vector<const void*> owners_;  // owners_[i] writes shards_[i]
};

// The registry of a filter entry's state, when the entry is a metrics filter; null otherwise.
std::shared_ptr<MetricsRegistry> metricsRegistryOf(const std::shared_ptr<FilterState>& state);

class MetricsFilterFactory : public core::FilterFactory {
 public:
  MetricsFilterFactory(const MetricsSettings& settings, FilterContext& context);
  ~MetricsFilterFactory() override;
  std::unique_ptr<core::Filter> create() override;

 private:
  friend class MetricsFilter;
  void log(const core::RequestHead& head, const core::StreamInfo& info, uint64_t totalMicros);
  void flushLog();

  const MetricsSettings& config_;
  const config::ListenerConfig& listener_;
  PerRouteLookup perRoute_;  // routes that turn the filter off
  std::shared_ptr<MetricsRegistry> registry_;
  MetricsShard& shard_;
  WorkerResources& resources_;
  std::vector<std::string> keyPathPrefixes_;  // access log paths: keys cut (path_redaction.h)
  std::string redactedPath_;
  int logFd_ = -1;
  bool ownsLogFd_ = false;
  std::string logBuffer_;
  uint64_t lastFlushMs_ = 0;
  uint64_t sampleCounter_ = 0;
};

class MetricsFilter final : public core::Filter {
 public:
  explicit MetricsFilter(MetricsFilterFactory& factory) : factory_(factory) {}
  core::FilterStatus onRequest() override;
  void onComplete(const core::StreamInfo& info) override;

 private:
  MetricsFilterFactory& factory_;
};

}  // namespace flowguard::filters
