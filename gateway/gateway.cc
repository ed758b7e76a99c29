#include "gateway/gateway.h"

#include <csignal>
#include <deque>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <uv.h>

#include "admin/admin_server.h"
#include "admin/admin_stats.h"
#include "core/connection_registry.h"
#include "core/filter_chain.h"
#include "core/listener.h"
#include "core/worker.h"
#include "filters/filter_registry.h"
#include "filters/redis_rate_limiter.h"
#include "filters/request_log.h"
#include "filters/stored_keys.h"
#include "store/store_client.h"
#include "store/store_service.h"
#include "upstream/cluster.h"
#include "upstream/cluster_state.h"
#include "upstream/health_checker.h"

namespace flowguard::gateway {

namespace {

constexpr std::chrono::milliseconds kDrainTimeout{5000};

core::ListenerSettings toSettings(const config::ListenerConfig& listener) {
  core::ListenerSettings settings;
  settings.name = listener.name;
  settings.host = listener.address.host;
  settings.port = listener.address.port;
  settings.maxHeaderBytes = listener.maxHeaderBytes;
  settings.maxHeaders = listener.maxHeaders;
  settings.maxRequestBody = listener.maxRequestBody;
  settings.headerTimeout = listener.headerTimeout;
  settings.idleTimeout = listener.idleTimeout;
  return settings;
}

// Per listener, per filter entry: what that entry shares across workers.
using SharedFilterStates = std::vector<std::vector<filters::FilterSharedState>>;

SharedFilterStates makeSharedFilterStates(const config::Config& config) {
  SharedFilterStates states;
  for (const auto& listener : config.listeners) {
    auto& perFilter = states.emplace_back();
    for (const auto& filter : listener.filters) perFilter.push_back(filters::createSharedState(filter));
  }
  return states;
}

// The key store, when `storage:` is configured: its thread, and the registry of the keys it
// holds, which every auth filter consults.
struct StoreContext {
  store::StoreService* service = nullptr;
  std::shared_ptr<filters::KeyRegistry> keys;
};

// Everything one worker owns. Built and destroyed on the worker's thread.
class GatewayWorkerState final : public core::WorkerState {
 public:
  GatewayWorkerState(core::Dispatcher& dispatcher, const config::Config& config,
                     const upstream::ClusterStates& clusterStates, const SharedFilterStates& shared,
                     const StoreContext& store)
      : clusters_(dispatcher, clusterStates), resources_{dispatcher, clusters_, config,
                                                         nullptr,    nullptr,   nullptr} {
    if (config.redis.configured) {
      redis_ = std::make_unique<filters::RedisRateLimiter>(dispatcher.loop(), config.redis);
      redis_->start();
      resources_.redis = redis_.get();
    }
    if (store.service != nullptr) {
      storeClient_ = std::make_unique<store::StoreClient>(dispatcher.loop(), *store.service);
      resources_.store = storeClient_.get();
      resources_.storedKeys = store.keys;
      if (config.storage.requestLog) requestLogger_ = std::make_unique<filters::RequestLogger>(*storeClient_);
    }
    for (size_t l = 0; l < config.listeners.size(); ++l) {
      const auto& listener = config.listeners[l];
      auto chain = std::make_unique<core::FilterChainFactory>();
      for (size_t f = 0; f < listener.filters.size(); ++f) {
        chain->add(filters::createFilterFactory(listener.filters[f], listener, shared[l][f], resources_));
      }
      chain->setObserver(requestLogger_.get());
      settings_.push_back(toSettings(listener));
      settings_.back().filterChain = chain.get();
      chains_.push_back(std::move(chain));
      listeners_.push_back(std::make_unique<core::Listener>(dispatcher, settings_.back(), registry_));
    }
  }

  bool start(std::string& error) {
    for (auto& listener : listeners_) {
      if (listener->start() != 0) {
        error = listener->error();
        return false;
      }
    }
    return true;
  }

  void drain() override {
    for (auto& listener : listeners_) listener->stop();
    registry_.drainAll();
  }
  bool drained() const override { return registry_.size() == 0; }
  void closeAll() override {
    for (auto& listener : listeners_) listener->stop();
    registry_.closeAll();
    clusters_.closeAll();
    if (redis_) redis_->close();
    // Last: closing connections above may still log their requests.
    if (storeClient_) storeClient_->close();
  }

 private:
  std::unique_ptr<filters::RedisRateLimiter> redis_;  // declared first: factories point to it
  std::unique_ptr<store::StoreClient> storeClient_;   // and these, which chains point to
  std::unique_ptr<filters::RequestLogger> requestLogger_;
  core::ConnectionRegistry registry_;
  upstream::ClusterManager clusters_;
  filters::WorkerResources resources_;
  std::deque<core::ListenerSettings> settings_;  // deque: connections keep references
  std::vector<std::unique_ptr<core::FilterChainFactory>> chains_;
  std::vector<std::unique_ptr<core::Listener>> listeners_;
};

void logClusterCounters(upstream::ClusterState& cluster) {
  const upstream::ClusterCounters& c = cluster.counters();
  auto n = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  fmt::print(stderr,
             "flowguard: cluster {}: requests={} retries={} retry_budget_exhausted={} overflow_requests={} "
             "overflow_pending={} overflow_connections={} no_healthy_host={} panic_routed={} ejections={}\n",
             cluster.config().name, n(c.requests), n(c.retries), n(c.retryBudgetExhausted),
             n(c.overflowRequests), n(c.overflowPending), n(c.overflowConnections), n(c.noHealthyHost),
             n(c.panicRouted), n(c.ejections));
  for (const auto& host : cluster.hosts()) {
    uint64_t samples = host->latencySamples.load(std::memory_order_relaxed);
    fmt::print(
        stderr,
        "flowguard: cluster {} host {}: healthy={} requests={} failures={} connect_failures={} ejections={} "
        "mean_ms={}\n",
        cluster.config().name, host->address, host->activeHealthy.load() ? "yes" : "no",
        host->requests.load(), host->failures.load(), host->connectFailures.load(), host->ejections.load(),
        samples == 0 ? 0 : host->latencyMsTotal.load() / samples);
  }
}

void logFilterCounters(const std::string& listener, const filters::FilterSharedState& shared) {
  if (shared.rateLimit) {
    const auto& r = *shared.rateLimit;
    fmt::print(
        stderr,
        "flowguard: rate_limit {}: allowed={} limited={} shadow_limited={} failure_mode_decisions={}\n",
        listener, r.allowed.load(), r.limited.load(), r.shadowLimited.load(), r.failureDecisions.load());
  }
  if (shared.metrics) {
    filters::MetricsSnapshot m = shared.metrics->snapshot();
    fmt::print(stderr,
               "flowguard: metrics {}: requests={} 2xx={} 3xx={} 4xx={} 429={} 5xx={} local_replies={} "
               "p50_us={} p99_us={}\n",
               listener, m.total.requests, m.total.status2xx, m.total.status3xx, m.total.status4xx,
               m.total.status429, m.total.status5xx, m.total.localReplies, m.latencyPercentileUs(0.5),
               m.latencyPercentileUs(0.99));
  }
}

}  // namespace

Gateway::Gateway(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {}

int Gateway::run() {
  std::signal(SIGPIPE, SIG_IGN);
  unsigned workerCount = config_->workers;
  if (workerCount == 0) workerCount = std::max(1u, std::thread::hardware_concurrency());
  const config::Config& config = *config_;
  // Health, ejections and circuit breakers: shared by the workers and the main thread.
  upstream::ClusterStates clusterStates = upstream::makeClusterStates(config);
  // API keys, in-process rate-limit counters, metrics: shared by the workers.
  SharedFilterStates sharedFilters = makeSharedFilterStates(config);
  // Keys and request logs in a database, served by the store thread.
  std::unique_ptr<store::StoreService> storeService;
  StoreContext storeContext;
  if (config.storage.configured) {
    try {
      storeService = std::make_unique<store::StoreService>(
          store::makeStore(config.storage.url, config.storage.password), config.storage);
    } catch (const std::exception& e) {
      fmt::print(stderr, "flowguard: storage: {}\n", e.what());
      return 1;
    }
    storeContext.service = storeService.get();
    storeContext.keys = std::make_shared<filters::KeyRegistry>();
    // Lives on the store thread (only its listener touches it).
    auto keySet = std::make_shared<filters::StoredKeySet>(config);
    storeService->setKeysListener(
        [keySet, keys = storeContext.keys](const std::vector<store::StoredKey>& changed) {
          keys->publish(keySet->apply(changed));
        });
    storeService->start();
    // Registered keys should work from the first request after a restart; a database that
    // does not answer in time does not hold the gateway back (yaml keys work meanwhile).
    if (!storeService->waitForKeys(std::chrono::seconds(3))) {
      fmt::print(
          stderr,
          "flowguard: storage: keys not loaded yet; stored keys start working when the database answers\n");
    }
  }

  // The main thread's loop waits for signals and runs the active health checks. Its handlers are installed
  // before any listener opens, so a SIGTERM that arrives during start-up is not fatal: libuv holds it until
  // uv_run, and by then every worker is running and can drain.
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::unique_ptr<core::Worker>> workers;
  upstream::HealthChecker healthChecker(&loop, clusterStates);
  std::unique_ptr<admin::AdminStats> adminStats;
  std::unique_ptr<admin::AdminServer> adminServer;
  struct SignalContext {
    std::vector<std::unique_ptr<core::Worker>>* workers;
    upstream::HealthChecker* healthChecker;
    std::unique_ptr<admin::AdminServer>* admin;
    uv_signal_t sigint;
    uv_signal_t sigterm;
  } context;
  context.workers = &workers;
  context.healthChecker = &healthChecker;
  context.admin = &adminServer;
  auto onSignal = [](uv_signal_t* handle, int signum) {
    auto* ctx = static_cast<SignalContext*>(handle->data);
    fmt::print(stderr, "flowguard: {} received, draining\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
    for (auto& worker : *ctx->workers) worker->requestStop(kDrainTimeout);
    ctx->healthChecker->stop();
    if (*ctx->admin) (*ctx->admin)->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&ctx->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&ctx->sigterm), nullptr);
  };
  for (auto [handle, signum] : {std::pair{&context.sigint, SIGINT}, std::pair{&context.sigterm, SIGTERM}}) {
    uv_signal_init(&loop, handle);
    handle->data = &context;
    uv_signal_start(handle, onSignal, signum);
  }
  auto closeLoop = [&loop, &context, &healthChecker] {
    healthChecker.stop();
    for (auto* handle : {&context.sigint, &context.sigterm}) {
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle))) {
        uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
      }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  };

  for (unsigned i = 0; i < workerCount; ++i) {
    auto worker = std::make_unique<core::Worker>(
        i,
        [&config, &clusterStates, &sharedFilters, &storeContext](
            core::Dispatcher& dispatcher, std::string& error) -> std::unique_ptr<core::WorkerState> {
          try {
            auto state = std::make_unique<GatewayWorkerState>(dispatcher, config, clusterStates,
                                                              sharedFilters, storeContext);
            if (!state->start(error)) {
              state->closeAll();
              return nullptr;
            }
            return state;
          } catch (const std::exception& e) {
            error = e.what();
            return nullptr;
          }
        });
    std::string error;
    if (!worker->start(error)) {
      fmt::print(stderr, "flowguard: {}\n", error);
      for (auto& w : workers) w->requestStop(std::chrono::milliseconds(0));
      for (auto& w : workers) w->join();
      closeLoop();
      return 1;
    }
    workers.push_back(std::move(worker));
  }
  for (const auto& listener : config.listeners) {
    fmt::print(stderr, "flowguard: listener {} on {} ({} worker{})\n", listener.name, listener.address.str(),
               workerCount, workerCount == 1 ? "" : "s");
  }

  if (config.admin.configured) {
    admin::StatsSources sources;
    sources.config = &config;
    sources.clusters = &clusterStates;
    sources.store = storeService.get();
    sources.workers = workerCount;
    for (size_t l = 0; l < config.listeners.size(); ++l) {
      admin::ListenerSources listener{config.listeners[l].name, nullptr, nullptr};
      for (const auto& shared : sharedFilters[l]) {
        if (shared.metrics) listener.metrics = shared.metrics;
        if (shared.rateLimit) listener.rateLimit = shared.rateLimit;
      }
      sources.listeners.push_back(std::move(listener));
    }
    adminStats = std::make_unique<admin::AdminStats>(std::move(sources));
    adminServer = std::make_unique<admin::AdminServer>(&loop, config, *adminStats, storeService.get());
    if (!adminServer->start()) {
      fmt::print(stderr, "flowguard: {}\n", adminServer->error());
      adminServer->close();
      for (auto& w : workers) w->requestStop(std::chrono::milliseconds(0));
      for (auto& w : workers) w->join();
      closeLoop();
      return 1;
    }
    fmt::print(stderr, "flowguard: admin on {} (dashboard: http://{}/server)\n", config.admin.address.str(),
               config.admin.address.str());
  }

  healthChecker.start();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (auto& worker : workers) worker->join();
  if (storeService) {
    // The workers handed over their last log records when they closed; write them.
    storeService->stop(std::chrono::seconds(5));
    const store::StoreStats s = storeService->stats();
    fmt::print(stderr,
               "flowguard: store {}: logs_written={} logs_dropped={} log_batches={} jobs={} jobs_failed={} "
               "outages={} "
               "active_keys={}\n",
               storeService->kind(), s.logsWritten, s.logsDropped, s.logBatches, s.jobs, s.jobsFailed,
               s.outages, s.activeKeys);
  }
  // Until the admin listener shows them live, the counters are reported at exit.
  for (const auto& [name, cluster] : clusterStates) logClusterCounters(*cluster);
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    for (const auto& shared : sharedFilters[l]) logFilterCounters(config.listeners[l].name, shared);
  }
  fmt::print(stderr, "flowguard: stopped\n");
  return 0;
}

}  // namespace flowguard::gateway
