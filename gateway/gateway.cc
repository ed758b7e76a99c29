#include "gateway/gateway.h"

#include <csignal>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>
#include <uv.h>

#include "admin/admin_server.h"
#include "admin/admin_stats.h"
#include "config/config_loader.h"
#include "config/live_config.h"
#include "core/listener.h"
#include "core/uv_handle.h"
#include "core/wall_clock.h"
#include "core/worker.h"
#include "filters/local_rate_limit_store.h"
#include "filters/stored_keys.h"
#include "gateway/admin_token.h"
#include "gateway/config_watcher.h"
#include "gateway/gateway_worker.h"
#include "gateway/generation.h"
#include "store/store_service.h"
#include "upstream/cluster_state.h"
#include "upstream/health_checker.h"

namespace flowguard::gateway {

namespace {

// How long a reload waits for every worker to take the new generation. Workers never
// block, so this is only reached when one is wedged; the reload then reports it.
constexpr std::chrono::seconds kApplyTimeout{5};
// A config file save settles this long before it is read.
constexpr std::chrono::milliseconds kWatchDebounce{100};
// After a second SIGTERM/SIGINT: what the request-log queue still gets.
constexpr std::chrono::milliseconds kHurriedFlush{500};

void logClusterCounters(upstream::ClusterState& cluster) {
  // The declared counters (upstream/cluster_state.h), in declaration order.
  std::string line = fmt::format("flowguard: cluster {}:", cluster.config().name);
  const auto decls = cluster.stats().decls();
  for (size_t i = 0; i < decls.size(); ++i)
    line += fmt::format(" {}={}", decls[i].name, cluster.stats().value(i));
  fmt::print(stderr, "{}\n", line);
  for (const auto& host : cluster.hosts()) {
    // Its declared counters (upstream/host_state.h) between its state and its mean latency.
    std::string hostLine = fmt::format("flowguard: cluster {} host {}: healthy={}", cluster.config().name,
                                       host->address, host->activeHealthy.load() ? "yes" : "no");
    const auto hostDecls = host->stats.decls();
    for (size_t i = 0; i < hostDecls.size(); ++i)
      hostLine += fmt::format(" {}={}", hostDecls[i].name, host->stats.value(i));
    const uint64_t samples = host->latencySamples.load(std::memory_order_relaxed);
    fmt::print(stderr, "{} ejections={} mean_ms={}\n", hostLine, host->ejections.load(),
               samples == 0 ? 0 : host->latencyMsTotal.load() / samples);
  }
}

// The keys issued through the key store, as the auth filters see them. The store thread
// applies key changes, a reload applies new plans; the lock keeps the two (and their
// publication) in order. Neither is on the request path.
class StoredKeys {
 public:
  explicit StoredKeys(const config::Config& config)
      : set_(config), registry_(std::make_shared<filters::KeyRegistry>()) {}
  void apply(const std::vector<store::StoredKey>& changed) {
    std::lock_guard lock(mutex_);
    registry_->publish(set_.apply(changed));
  }
  void setPlans(std::vector<config::Plan> plans) {
    std::lock_guard lock(mutex_);
    registry_->publish(set_.setPlans(std::move(plans)));
  }
  const std::shared_ptr<filters::KeyRegistry>& registry() const { return registry_; }

 private:
  std::mutex mutex_;
  filters::StoredKeySet set_;
  std::shared_ptr<filters::KeyRegistry> registry_;
};

// The main thread: starts the workers, then waits on its own loop for signals, config file
// changes and the admin listener, runs the active health checks, reloads and shuts down.
class Supervisor {
 public:
  explicit Supervisor(std::shared_ptr<const config::Config> config) {
    live_.config = std::move(config);
    live_.loadedAt = core::isoTimeMs(core::unixNowMs());
    uv_loop_init(&loop_);
  }
  ~Supervisor() { uv_loop_close(&loop_); }

  int run();

 private:
  bool startStore();
  bool startWorkers();
  bool startAdmin();
  void installSignals();
  void closeMainLoop();
  admin::StatsSources statsSources() const;

  config::ReloadAttempt reload(const std::string& trigger);
  void reloadIfFileChanged();
  bool applyToWorkers(const std::shared_ptr<const Generation>& generation, std::vector<ListenSockets> sockets,
                      std::string& error);

  void onStopSignal(int signum);
  void onWorkerExited();
  // Samples the RSS and sets or clears the overload flag (every overload.check_interval).
  void startOverloadChecks();
  void checkOverload();

  uv_loop_t loop_;
  config::LiveConfig live_;
  std::shared_ptr<const Generation> generation_;
  std::string lastFileText_;  // the file as last read: a save with the same bytes is no change
  unsigned workerCount_ = 1;
  config::RedisConfig redis_;  // the redis section with its host resolved (workers point here)

  std::unique_ptr<store::StoreService> store_;
  std::unique_ptr<StoredKeys> storedKeys_;
  // POST /register attempts per client address, for every worker and every generation.
  std::shared_ptr<filters::LocalRateLimitStore> registrations_ =
      std::make_shared<filters::LocalRateLimitStore>();
  std::vector<std::unique_ptr<core::Worker>> workers_;
  std::unique_ptr<upstream::HealthChecker> healthChecker_;
  std::unique_ptr<admin::AdminStats> adminStats_;
  std::unique_ptr<admin::AdminServer> adminServer_;
  std::unique_ptr<ConfigWatcher> watcher_;

  core::UvHandle<uv_signal_t> sigint_;
  core::UvHandle<uv_signal_t> sigterm_;
  core::UvHandle<uv_signal_t> sighup_;
  core::UvHandle<uv_async_t> workerExited_;  // workers wake the main loop when they are done
  core::UvHandle<uv_timer_t> overloadTimer_;
  config::Duration overloadInterval_{0};
  uint64_t lowestRssSinceHeapRelease_ = 0;  // see core::shouldReleaseHeap
  uint64_t lastHeapReleaseMs_ = 0;          // uv_now of the last release
  std::atomic<unsigned> workersExited_{0};
  bool stopping_ = false;
  bool hurried_ = false;  // a second stop signal: exit now
  bool loopClosed_ = false;
};

bool Supervisor::startStore() {
  const config::Config& config = *live_.config;
  if (!config.storage.configured) return true;
  try {
    store_ = std::make_unique<store::StoreService>(
        store::makeStore(config.storage.url, config.storage.password), config.storage);
  } catch (const std::exception& e) {
    fmt::print(stderr, "flowguard: storage: {}\n", e.what());
    return false;
  }
  storedKeys_ = std::make_unique<StoredKeys>(config);
  store_->setKeysListener(
      [keys = storedKeys_.get()](const std::vector<store::StoredKey>& changed) { keys->apply(changed); });
  store_->setConfiguredKeys(filters::configuredKeys(config, core::unixNowMs()));
  store_->start();
  // Registered keys should work from the first request after a restart; a database that
  // does not answer in time does not hold the gateway back (yaml keys work meanwhile).
  if (!store_->waitForKeys(std::chrono::seconds(3))) {
    fmt::print(
        stderr,
        "flowguard: storage: keys not loaded yet; stored keys start working when the database answers\n");
  }
  return true;
}

bool Supervisor::startWorkers() {
  const config::Config& config = *live_.config;
  workerCount_ = config.workers != 0 ? config.workers : std::max(1u, std::thread::hardware_concurrency());
  ProcessServices services;
  if (config.redis.configured) {
    // Resolved here, once: hiredis would otherwise look the name up on a worker's loop at
    // every reconnect, and a slow resolver would stall that worker.
    redis_ = config.redis;
    sockaddr_storage address{};
    std::string error;
    if (core::lookupAddress(redis_.host, redis_.port, address, error) != 0) {
      fmt::print(stderr, "flowguard: redis: {}\n", error);
      return false;
    }
    char ip[INET6_ADDRSTRLEN] = {0};
    if (address.ss_family == AF_INET6) {
      uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&address), ip, sizeof(ip));
    } else {
      uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&address), ip, sizeof(ip));
    }
    redis_.host = ip;
    services.redis = &redis_;
  }
  services.store = store_.get();
  services.requestLog = config.storage.requestLog;
  if (storedKeys_) services.storedKeys = storedKeys_->registry();
  services.registrations = registrations_;
  for (unsigned i = 0; i < workerCount_; ++i) {
    auto worker = std::make_unique<core::Worker>(
        i,
        [generation = generation_, services](core::Dispatcher& dispatcher,
                                             std::string& error) -> std::unique_ptr<core::WorkerState> {
          try {
            auto state = std::make_unique<GatewayWorkerState>(dispatcher, generation, services);
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
    // The handle itself, not the member: the main thread may close it (resetting the
    // member) while a worker still sends; libuv makes uv_close wait for a send in flight.
    worker->onExit([this, exited = workerExited_.get()] {
      workersExited_.fetch_add(1);
      uv_async_send(exited);
    });
    std::string error;
    if (!worker->start(error)) {
      fmt::print(stderr, "flowguard: {}\n", error);
      return false;
    }
    workers_.push_back(std::move(worker));
  }
  for (const auto& listener : config.listeners) {
    fmt::print(stderr, "flowguard: listener {} on {} ({} worker{})\n", listener.name, listener.address.str(),
               workerCount_, workerCount_ == 1 ? "" : "s");
  }
  return true;
}

admin::StatsSources Supervisor::statsSources() const {
  admin::StatsSources sources;
  sources.live = &live_;
  sources.clusters = &generation_->clusters;
  sources.store = store_.get();
  sources.workers = workerCount_;
  sources.overload = generation_->overload;
  const config::Config& config = *generation_->config;
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    admin::ListenerSources listener = admin::listenerSources(config.listeners[l], generation_->filters[l]);
    listener.connections = generation_->connectionLimits[l];
    sources.listeners.push_back(std::move(listener));
  }
  return sources;
}

bool Supervisor::startAdmin() {
  const config::Config& config = *live_.config;
  if (!config.admin.configured) return true;
  std::string token = config.admin.token;
  std::string generatedNote;
  if (token.empty() && config.admin.tokenRequired) {
    try {
      AdminToken generated = loadOrCreateAdminToken(config.stateDir);
      token = generated.token;
      generatedNote = fmt::format(
          "; flowguard.yaml gives no admin token, so {} {} (FLOWGUARD_ADMIN_TOKEN or admin.token replaces "
          "it)",
          generated.created ? "one was generated into" : "it is the one kept in", generated.path);
    } catch (const std::exception& e) {
      fmt::print(stderr, "flowguard: admin on {} needs a token: {}\n", config.admin.address.str(), e.what());
      return false;
    }
  }
  adminStats_ = std::make_unique<admin::AdminStats>(statsSources());
  adminServer_ = std::make_unique<admin::AdminServer>(
      &loop_, live_, *adminStats_, store_.get(), [this] { return reload("admin"); }, token);
  if (!adminServer_->start()) {
    fmt::print(stderr, "flowguard: {}\n", adminServer_->error());
    return false;
  }
  // A token the operator chose is theirs to know and never goes to the log; a generated one
  // is printed, as Jupyter does, since the log is where a container's user looks first.
  fmt::print(stderr, "flowguard: admin on {} (dashboard: {}/server{}){}\n", config.admin.address.str(),
             config.admin.localUrl(), generatedNote.empty() ? "" : "#token=" + token, generatedNote);
  return true;
}

// The handlers are installed before any listener opens, so a SIGTERM that arrives during
// start-up is not fatal: libuv holds it until uv_run, and by then every worker is running
// and can drain.
void Supervisor::installSignals() {
  for (auto [handle, signum] :
       {std::pair{&sigint_, SIGINT}, std::pair{&sigterm_, SIGTERM}, std::pair{&sighup_, SIGHUP}}) {
    *handle = core::UvHandle<uv_signal_t>(&loop_, this, uv_signal_init);
    uv_signal_start(
        handle->get(),
        [](uv_signal_t* h, int signo) {
          auto* self = static_cast<Supervisor*>(h->data);
          if (signo == SIGHUP) {
            self->reload("signal");
          } else {
            self->onStopSignal(signo);
          }
        },
        signum);
  }
  workerExited_ = core::UvHandle<uv_async_t>(&loop_, this, uv_async_init, [](uv_async_t* a) {
    static_cast<Supervisor*>(a->data)->onWorkerExited();
  });
  overloadTimer_ = core::UvHandle<uv_timer_t>(&loop_, this, uv_timer_init);
}

void Supervisor::startOverloadChecks() {
  overloadInterval_ = live_.config->overload.checkInterval;
  const auto ms = static_cast<uint64_t>(overloadInterval_.count());
  uv_timer_start(
      overloadTimer_.get(), [](uv_timer_t* t) { static_cast<Supervisor*>(t->data)->checkOverload(); }, ms,
      ms);
  checkOverload();
}

void Supervisor::checkOverload() {
  core::OverloadState& state = *generation_->overload;
  const uint64_t limit = state.memoryLimit.load(std::memory_order_relaxed);
  const bool was = state.isOverloaded();
  uint64_t rss = core::currentRssBytes();
  const uint64_t nowMs = uv_now(&loop_);
  if (lastHeapReleaseMs_ == 0) lastHeapReleaseMs_ = nowMs;
  if (lowestRssSinceHeapRelease_ == 0 || rss < lowestRssSinceHeapRelease_) lowestRssSinceHeapRelease_ = rss;
  if (core::shouldReleaseHeap(rss, lowestRssSinceHeapRelease_, nowMs - lastHeapReleaseMs_, was, limit)) {
    malloc_trim(0);
    rss = core::currentRssBytes();
    lowestRssSinceHeapRelease_ = rss;
    lastHeapReleaseMs_ = nowMs;
    state.heapReleases.fetch_add(1, std::memory_order_relaxed);
  }
  state.rssBytes.store(rss, std::memory_order_relaxed);
  const bool now = core::nextOverloaded(was, rss, limit);
  if (now == was) return;
  state.overloaded.store(now, std::memory_order_relaxed);
  constexpr double kMiB = 1024.0 * 1024.0;
  if (now) {
    state.transitions.fetch_add(1, std::memory_order_relaxed);
    fmt::print(stderr,
               "flowguard: overload: RSS {:.1f} MiB is above memory_limit {:.1f} MiB: closing new "
               "connections, answering new requests 503\n",
               rss / kMiB, limit / kMiB);
  } else {
    fmt::print(stderr, "flowguard: overload: RSS {:.1f} MiB{}: accepting again\n", rss / kMiB,
               limit == 0 ? ", memory_limit off"
                          : fmt::format(" is below 90% of memory_limit {:.1f} MiB", limit / kMiB));
  }
}

// Closes every handle of the main loop; uv_run then returns.
void Supervisor::closeMainLoop() {
  if (loopClosed_) return;
  loopClosed_ = true;
  if (watcher_) watcher_->close();
  if (healthChecker_) healthChecker_->stop();
  if (adminServer_) adminServer_->close();
  for (auto* handle : {&sigint_, &sigterm_, &sighup_}) handle->reset();
  workerExited_.reset();
  overloadTimer_.reset();
}

void Supervisor::onStopSignal(int signum) {
  const char* name = signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (stopping_) {
    if (hurried_) return;
    hurried_ = true;
    fmt::print(stderr, "flowguard: second {}: closing every connection now\n", name);
    for (auto& worker : workers_) worker->requestStop(std::chrono::milliseconds(0));
    return;
  }
  stopping_ = true;
  const auto drain = live_.config->drainTimeout;
  fmt::print(stderr, "flowguard: {} received, draining (up to {} ms; a second signal stops at once)\n", name,
             drain.count());
  // Load balancers polling /ready stop sending; the admin listener itself stays up to say so.
  if (adminStats_) adminStats_->setDraining(true);
  if (watcher_) watcher_->close();
  for (auto& worker : workers_) worker->requestStop(drain);
}

void Supervisor::onWorkerExited() {
  if (workersExited_.load() < workers_.size()) return;
  closeMainLoop();
}

void Supervisor::reloadIfFileChanged() {
  config::ConfigError error;
  std::optional<std::string> text = config::readConfigFile(live_.config->sourcePath, error);
  // Unreadable mid-swap (the name briefly gone): the rename's own event follows. Empty: an
  // in-place save truncated the file and has not written it yet; its write's event follows.
  // (An empty file is no config either way; SIGHUP or POST /reload would report it.)
  if (!text || text->empty()) return;
  if (*text == lastFileText_) {
    ++live_.fileSavesUnchanged;
    return;
  }
  reload("file");
}

bool Supervisor::applyToWorkers(const std::shared_ptr<const Generation>& generation,
                                std::vector<ListenSockets> sockets, std::string& error) {
  std::vector<std::future<void>> applied;
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto done = std::make_shared<std::promise<void>>();
    applied.push_back(done->get_future());
    workers_[i]->post(
        [generation, socketsOfWorker = std::move(sockets[i]), done](core::WorkerState& state) mutable {
          static_cast<GatewayWorkerState&>(state).apply(generation, std::move(socketsOfWorker));
          done->set_value();
        });
  }
  const auto deadline = std::chrono::steady_clock::now() + kApplyTimeout;
  for (auto& future : applied) {
    if (future.wait_until(deadline) != std::future_status::ready) {
      error = "a worker did not take the new config in time (it applies it when it can)";
      return false;
    }
  }
  return true;
}

config::ReloadAttempt Supervisor::reload(const std::string& trigger) {
  config::ReloadAttempt attempt;
  attempt.at = core::isoTimeMs(core::unixNowMs());
  attempt.trigger = trigger;
  attempt.generation = live_.generation;
  const std::string& path = live_.config->sourcePath;
  const auto started = std::chrono::steady_clock::now();
  auto finish = [&](config::ReloadAttempt& a) -> config::ReloadAttempt {
    a.durationMs =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (a.ok) {
      ++live_.reloadsOk;
      ++live_.reloadsOkByTrigger[trigger];
      fmt::print(stderr, "flowguard: reload ({}): generation {} applied in {:.1f} ms\n", trigger,
                 a.generation, a.durationMs);
      for (const auto& section : a.restartRequired) {
        fmt::print(stderr, "flowguard: reload ({}): '{}' changed; it takes effect at the next restart\n",
                   trigger, section);
      }
    } else {
      ++live_.reloadsFailed;
      for (const auto& e : a.errors) fmt::print(stderr, "flowguard: reload ({}) failed: {}\n", trigger, e);
    }
    live_.lastReload = a;
    return a;
  };
  if (stopping_) {
    attempt.errors.push_back("the gateway is shutting down");
    return finish(attempt);
  }

  config::ConfigError readError;
  std::optional<std::string> text = config::readConfigFile(path, readError);
  if (!text) {
    attempt.errors.push_back(readError.str());
    return finish(attempt);
  }
  lastFileText_ = *text;
  config::LoadResult loaded = config::loadConfigText(*text, path);
  std::vector<config::ConfigError> errors = std::move(loaded.errors);
  for (const auto& w : loaded.warnings) {
    attempt.warnings.push_back(w.str());
    fmt::print(stderr, "flowguard: reload ({}): {}\n", trigger, w.str());
  }
  std::shared_ptr<const config::Config> next;
  if (errors.empty()) {
    attempt.restartRequired = config::sectionsNeedingRestart(*live_.config, *loaded.config);
    next = config::applicableConfig(*live_.config, *loaded.config, errors);
  }
  if (!errors.empty()) {
    for (const auto& e : errors) attempt.errors.push_back(e.str());
    return finish(attempt);
  }

  // Listeners at an address the running config does not have: every worker gets its own
  // socket (SO_REUSEPORT), opened here so a taken port fails the reload before any worker
  // changes anything.
  std::vector<ListenSockets> sockets(workers_.size());
  auto closeSockets = [&] {
    for (auto& perWorker : sockets) {
      for (auto& [address, fd] : perWorker) ::close(fd);
    }
  };
  for (const auto& listener : next->listeners) {
    bool known = false;
    for (const auto& running : live_.config->listeners) known = known || running.address == listener.address;
    if (known) continue;
    for (auto& perWorker : sockets) {
      std::string error;
      int fd = core::openListenSocket(listener.address.host, listener.address.port, error);
      if (fd < 0) {
        closeSockets();
        attempt.errors.push_back(fmt::format("{}:{}:{}: listener {}: {}", path, listener.location.line,
                                             listener.location.column, listener.name, error));
        return finish(attempt);
      }
      perWorker.emplace(listener.address.str(), fd);
    }
  }

  std::shared_ptr<const Generation> generation;
  try {
    generation = makeGeneration(next, generation_.get());
  } catch (const upstream::HostResolutionError& e) {
    closeSockets();
    const config::ClusterConfig* cluster = next->findCluster(e.cluster);
    const config::SourceLocation at = cluster != nullptr ? cluster->location : config::SourceLocation{};
    attempt.errors.push_back(config::ConfigError{path, at.line, at.column, e.what()}.str());
    return finish(attempt);
  }
  std::string applyError;
  const bool allApplied = applyToWorkers(generation, std::move(sockets), applyError);
  // From here on the workers run the new generation (a late one will too): so does the rest.
  const bool plansChanged = !(next->plans == live_.config->plans);
  generation_ = generation;
  live_.config = next;
  live_.generation = generation->number;
  live_.loadedAt = attempt.at;
  if (healthChecker_) healthChecker_->update(generation_->clusters);
  if (adminStats_) adminStats_->setSources(statsSources());
  if (storedKeys_ && plansChanged) storedKeys_->setPlans(next->plans);
  if (store_) store_->setConfiguredKeys(filters::configuredKeys(*next, core::unixNowMs()));
  if (next->overload.checkInterval != overloadInterval_) {
    startOverloadChecks();
  } else {
    checkOverload();  // a new memory_limit takes effect now, not at the next tick
  }
  attempt.ok = true;
  attempt.generation = live_.generation;
  if (!allApplied) attempt.errors.push_back(applyError);
  return finish(attempt);
}

int Supervisor::run() {
  std::signal(SIGPIPE, SIG_IGN);
  {
    config::ConfigError ignored;
    lastFileText_ = config::readConfigFile(live_.config->sourcePath, ignored).value_or("");
  }
  try {
    generation_ = makeGeneration(live_.config, nullptr);
  } catch (const upstream::HostResolutionError& e) {
    // As nginx does with its upstreams: a host name that does not resolve stops the start,
    // named at its place in the file as a reload and `flowguard validate` name it.
    const config::ClusterConfig* cluster = live_.config->findCluster(e.cluster);
    const config::SourceLocation at = cluster != nullptr ? cluster->location : config::SourceLocation{};
    fmt::print(stderr, "flowguard: {}\n",
               config::ConfigError{live_.config->sourcePath, at.line, at.column, e.what()}.str());
    return 1;
  }
  installSignals();  // first: a signal during start-up waits for the loop instead of killing us
  if (!startStore()) {
    closeMainLoop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    return 1;
  }
  healthChecker_ = std::make_unique<upstream::HealthChecker>(&loop_, generation_->clusters);
  auto abort = [this] {
    for (auto& w : workers_) w->requestStop(std::chrono::milliseconds(0));
    for (auto& w : workers_) w->join();
    closeMainLoop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (store_) store_->stop(std::chrono::seconds(1));
    return 1;
  };
  if (!startWorkers() || !startAdmin()) return abort();
  watcher_ = std::make_unique<ConfigWatcher>(&loop_, live_.config->sourcePath, kWatchDebounce,
                                             [this] { reloadIfFileChanged(); });
  if (!watcher_->start()) {
    fmt::print(stderr, "flowguard: {}; reload with SIGHUP or POST /reload instead\n", watcher_->error());
  }
  healthChecker_->start();
  startOverloadChecks();

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& worker : workers_) worker->join();
  if (store_) {
    // The workers handed over their last log records when they closed; write them.
    store_->stop(hurried_ ? kHurriedFlush : std::chrono::milliseconds(5000));
    const store::StoreStats s = store_->stats();
    fmt::print(stderr,
               "flowguard: store {}: logs_written={} logs_dropped={} log_batches={} jobs={} jobs_failed={} "
               "outages={} active_keys={}\n",
               store_->kind(), s.logsWritten, s.logsDropped, s.logBatches, s.jobs, s.jobsFailed, s.outages,
               s.activeKeys);
  }
  for (const auto& [name, cluster] : generation_->clusters) logClusterCounters(*cluster);
  const config::Config& config = *generation_->config;
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    for (size_t f = 0; f < config.listeners[l].filters.size(); ++f) {
      const std::string line = filters::exitSummary(config.listeners[l].name, config.listeners[l].filters[f],
                                                    generation_->filters[l][f]);
      if (!line.empty()) fmt::print(stderr, "{}\n", line);
    }
  }
  fmt::print(stderr, "flowguard: stopped{}\n", hurried_ ? " (cut short by a second signal)" : "");
  return hurried_ ? 1 : 0;
}

}  // namespace

Gateway::Gateway(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {}

int Gateway::run() {
  Supervisor supervisor(config_);
  return supervisor.run();
}

}  // namespace flowguard::gateway
