// Wires a loaded Config into running workers: one Worker per `workers:`, each with its
// own listeners (SO_REUSEPORT), filter chains and upstream pools. The main thread only
// waits for signals.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace flowguard::gateway {

class Gateway {
 public:
  explicit Gateway(std::shared_ptr<const config::Config> config);
  // Starts the workers and blocks until SIGINT or SIGTERM, then drains in-flight requests
  // (up to drainTimeout) and returns the process exit code.
  int run();

 private:
  std::shared_ptr<const config::Config> config_;
};

}  // namespace flowguard::gateway
