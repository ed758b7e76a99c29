#include "core/connection_registry.h"

#include <vector>

#include "core/downstream_connection.h"

namespace flowguard::core {

void ConnectionRegistry::drainAll() {
  draining_ = true;
  // drain() may close (and so unregister) a connection: iterate over a copy.
  std::vector<DownstreamConnection*> all(live_.begin(), live_.end());
  for (auto* c : all) c->drain();
}

void ConnectionRegistry::closeAll() {
  std::vector<DownstreamConnection*> all(live_.begin(), live_.end());
  for (auto* c : all) c->close();
}

}  // namespace flowguard::core
