// Wires a loaded Config into running workers: one Worker per `workers:`, each with its
// own listeners (SO_REUSEPORT), filter chains and upstream pools. The main thread runs the
// health checks and the admin listener, and reloads the config (SIGHUP, a change of the
// file, POST /reload) and shuts down (SIGTERM/SIGINT) without dropping a request.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace flowguard::gateway {

class Gateway {
 public:
  explicit Gateway(std::shared_ptr<const config::Config> config);
  // Starts the workers and blocks until SIGINT or SIGTERM, then drains in-flight requests
  // (up to drain_timeout) and returns the process exit code: 0, or 1 when start-up failed or
  // a second signal cut the drain short.
  int run();

 private:
  std::shared_ptr<const config::Config> config_;
};

}  // namespace flowguard::gateway
