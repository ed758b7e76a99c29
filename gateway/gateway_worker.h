// Everything one worker thread owns: its Redis connection and key-store mailbox (for the
// life of the process), and per configuration generation its clusters (connection pools)
// and filter chains, and per listener address its listening socket and connections.
// Built, reloaded and destroyed on the worker's thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dispatcher.h"
#include "core/listener.h"
#include "core/worker.h"
#include "filters/key_registry.h"
#include "filters/local_rate_limit_store.h"
#include "filters/redis_rate_limiter.h"
#include "filters/request_log.h"
#include "gateway/generation.h"
#include "store/store_client.h"
#include "store/store_service.h"

namespace flowguard::gateway {

// What workers share for the life of the process. Sections that only a restart changes
// (redis, storage) come from the config the process started with.
struct ProcessServices {
  const config::RedisConfig* redis = nullptr;                   // null without `redis:`
  store::StoreService* store = nullptr;                         // null without `storage:`
  bool requestLog = false;                                      // storage.request_log
  std::shared_ptr<filters::KeyRegistry> storedKeys;             // keys from the store; null without it
  std::shared_ptr<filters::LocalRateLimitStore> registrations;  // register: per_ip counters
};

// Sockets the main thread opened for one worker, by listener address ("host:port"), for
// listeners a reload added or moved.
using ListenSockets = std::map<std::string, int>;

class GatewayWorkerState final : public core::WorkerState {
 public:
  GatewayWorkerState(core::Dispatcher& dispatcher, std::shared_ptr<const Generation> generation,
                     const ProcessServices& services);
  ~GatewayWorkerState() override;

  // Binds every listener. False with `error` when one cannot listen.
  bool start(std::string& error);

  // Swaps in the next generation: new requests run on its chains, requests in flight finish
  // on theirs. Listeners at an address the new config still has keep their socket and
  // connections; new addresses listen on `sockets`; listeners whose address is gone stop
  // accepting and their connections close after their current exchange. On error
  // (logged) the running generation stays and the sockets are closed.
  void apply(std::shared_ptr<const Generation> generation, ListenSockets sockets);

  void drain() override;
  bool drained() const override;
  void closeAll() override;

 private:
  // One generation as this worker runs it. Chains hand out references to themselves that
  // keep the whole struct alive (see chainFor), so a generation lives until the last
  // request that started on it is done; its clusters (and pools, when no newer generation
  // shares them) close with it.
  struct WorkerGeneration {
    WorkerGeneration(core::Dispatcher& dispatcher, std::shared_ptr<const Generation> shared,
                     const WorkerGeneration* previous, GatewayWorkerState& worker);
    std::shared_ptr<const Generation> shared;
    upstream::ClusterManager clusters;
    filters::WorkerResources resources;
    std::vector<std::unique_ptr<core::FilterChainFactory>> chains;  // per listener, config order
  };
  struct ActiveListener {
    config::SocketAddress address;
    std::shared_ptr<core::ListenerContext> context;
    std::unique_ptr<core::Listener> listener;
  };

  static std::shared_ptr<const core::FilterChainFactory> chainFor(
      const std::shared_ptr<WorkerGeneration>& generation, size_t listener);

  core::Dispatcher& dispatcher_;
  std::unique_ptr<filters::RedisRateLimiter> redis_;  // declared first: factories point to it
  std::unique_ptr<store::StoreClient> storeClient_;   // and these, which chains point to
  std::unique_ptr<filters::RequestLogger> requestLogger_;
  std::shared_ptr<filters::KeyRegistry> storedKeys_;
  std::shared_ptr<filters::LocalRateLimitStore> registrations_;
  std::shared_ptr<WorkerGeneration> generation_;
  std::vector<ActiveListener> listeners_;
  // Contexts of listeners a reload closed, until their last connection is gone.
  std::vector<std::weak_ptr<core::ListenerContext>> retired_;
};

}  // namespace flowguard::gateway
