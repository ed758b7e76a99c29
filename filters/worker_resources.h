// Per-worker things filters may use. One instance per worker thread; filters made on
// that worker hold references to it.
#pragma once

#include "config/config.h"
#include "core/dispatcher.h"
#include "store/store_client.h"
#include "upstream/cluster.h"

namespace flowguard::filters {

class LocalRateLimitStore;
class RedisRateLimiter;
class KeyRegistry;
struct SummarySources;

struct WorkerResources {
  core::Dispatcher& dispatcher;
  upstream::ClusterManager& clusters;
  const config::Config& config;
  RedisRateLimiter* redis = nullptr;    // this worker's Redis connection; null without `redis:`
  store::StoreClient* store = nullptr;  // this worker's door to the key store; null without `storage:`
  // Keys issued through the key store, shared by every worker; null without `storage:`.
  std::shared_ptr<KeyRegistry> storedKeys;
  // The whole gateway's counters, for `handler: summary`; null in tests that need none.
  const SummarySources* summary = nullptr;
  // POST /register attempts per client address (register: per_ip), shared by every worker and
  // kept across reloads; null in tests that need none.
  LocalRateLimitStore* registrations = nullptr;
};

}  // namespace flowguard::filters
