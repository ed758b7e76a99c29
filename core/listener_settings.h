// What a downstream connection needs to know about its listener. Built by the gateway
// from config::ListenerConfig (core does not depend on config).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/connection_limits.h"
#include "core/connection_registry.h"
#include "core/filter_chain.h"
#include "core/ip_range.h"

namespace flowguard::core {

struct ListenerSettings {
  std::string name;
  std::string host = "0.0.0.0";
  uint16_t port = 0;
  size_t maxHeaderBytes = 16 * 1024;
  size_t maxHeaders = 100;
  uint64_t maxRequestBody = 10ull << 20;  // 0 = unlimited
  std::chrono::milliseconds headerTimeout{10'000};
  std::chrono::milliseconds idleTimeout{60'000};
  // End of a request head to the end of its body; a slower body is cut (408).
  std::chrono::milliseconds bodyTimeout{60'000};
  // Above this many queued response bytes the router stops reading its upstream, and the
  // connection stops reading the client's next pipelined request (the listener's buffer_limit).
  size_t writeHighWatermark = 1 << 20;
  // How much of an unread request body may be read and thrown away after an early reply
  // before the connection is closed instead.
  uint64_t maxDrainBytes = 256 * 1024;
  // Request trailers go upstream only when on, minus forbiddenTrailer() fields and
  // `extraTrailerDeny` (the auth filter's key header).
  bool forwardTrailers = false;
  std::vector<std::string> extraTrailerDeny;
  // Peers whose identity headers (X-Forwarded-For, X-Request-Id, X-Real-IP, Forwarded) are
  // believed; see config::ListenerConfig::trustedProxies.
  std::vector<IpRange> trustedProxies;
  bool keepClientRequestId = false;  // an untrusted client's X-Request-Id goes up as X-Client-Request-Id
};

// One listener on one worker as its connections see it. A reload replaces `settings` and
// `filterChain` in place (on the worker's thread, between events): a request runs on the
// chain that was current when its head arrived, because it holds its own reference to it;
// the next request on the same connection takes the new one. Connections hold the context
// itself, so a listener closed by a reload lives on until its last connection is gone.
struct ListenerContext {
  ListenerSettings settings;
  std::shared_ptr<const FilterChainFactory> filterChain;
  ConnectionRegistry connections;  // this listener's open connections on this worker
  // Admission over all workers: this listener's limit (shared by its contexts on every
  // worker) and the process's. Null: no such limit. A connection keeps the objects it was
  // admitted by (ConnectionSlot), so a reload may replace these at any time.
  std::shared_ptr<ConnectionLimit> connectionLimit;
  std::shared_ptr<OverloadState> overload;
};

}  // namespace flowguard::core
