// A listening socket of one worker. Every worker binds its own socket to the same address
// with SO_REUSEPORT, so the kernel spreads connections across workers and no accept lock
// or cross-thread hand-off is needed. (libuv 1.44 has no flag for SO_REUSEPORT: the socket
// is made, configured and bound here, then handed to uv_tcp_open.)
#pragma once

#include <string>

#include <uv.h>

#include "core/connection_registry.h"
#include "core/dispatcher.h"
#include "core/listener_settings.h"

namespace flowguard::core {

class Listener {
 public:
  Listener(Dispatcher& dispatcher, const ListenerSettings& settings, ConnectionRegistry& registry);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens. Returns 0, or a negative errno-style code; error() then says why.
  int start();
  // Stops accepting; the socket is closed. Existing connections are not touched.
  void stop();
  const std::string& error() const { return error_; }
  // The bound port (useful when settings.port is 0).
  uint16_t port() const { return boundPort_; }

 private:
  static void onConnection(uv_stream_t* server, int status);

  Dispatcher& dispatcher_;
  const ListenerSettings& settings_;
  ConnectionRegistry& registry_;
  uv_tcp_t* tcp_ = nullptr;  // owned; freed in its close callback
  std::string error_;
  uint16_t boundPort_ = 0;
};

// Resolves "host" + port into a socket address; "localhost" means 127.0.0.1.
// Returns 0 or a negative libuv error.
int resolveAddress(const std::string& host, uint16_t port, sockaddr_storage& out);

}  // namespace flowguard::core
