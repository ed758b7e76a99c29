// Per-worker things filters may use. One instance per worker thread; filters made on
// that worker hold references to it.
#pragma once

#include "core/dispatcher.h"
#include "upstream/cluster.h"

namespace flowguard::filters {

class RedisRateLimiter;

struct WorkerResources {
  core::Dispatcher& dispatcher;
  upstream::ClusterManager& clusters;
  RedisRateLimiter* redis = nullptr;  // this worker's Redis connection; null without `redis:`
};

}  // namespace flowguard::filters
