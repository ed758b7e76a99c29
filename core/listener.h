// A listening socket of one worker. Every worker binds its own socket to the same address
// with SO_REUSEPORT, so the kernel spreads connections across workers and no accept lock
// or cross-thread hand-off is needed. (libuv 1.44 has no flag for SO_REUSEPORT: the socket
// is made, configured and bound here, then handed to uv_tcp_open.)
#pragma once

#include <memory>
#include <string>

#include <uv.h>

#include "core/dispatcher.h"
#include "core/listener_settings.h"

namespace flowguard::core {

// A socket bound to host:port with SO_REUSEPORT (and listening): the fd, or a negative
// errno-style code with `error` set. `boundPort` gets the port (useful for port 0).
int openListenSocket(const std::string& host, uint16_t port, std::string& error,
                     uint16_t* boundPort = nullptr);

class Listener {
 public:
  Listener(Dispatcher& dispatcher, std::shared_ptr<ListenerContext> context);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens. Returns 0, or a negative errno-style code; error() then says why.
  int start();
  // Listens on a socket openListenSocket() made (on another thread, e.g. for a reload);
  // takes the fd in every case. Same result as start().
  int adopt(int fd);
  // Stops accepting; the socket is closed. Existing connections are not touched.
  void stop();
  const std::string& error() const { return error_; }
  // The bound port (useful when settings.port is 0).
  uint16_t port() const { return boundPort_; }

 private:
  static void onConnection(uv_stream_t* server, int status);

  Dispatcher& dispatcher_;
  std::shared_ptr<ListenerContext> context_;
  UvHandle<uv_tcp_t> tcp_;
  std::string error_;
  uint16_t boundPort_ = 0;
};

// Resolves "host" + port into a socket address; "localhost" means 127.0.0.1.
// Returns 0 or a negative libuv error.
int resolveAddress(const std::string& host, uint16_t port, sockaddr_storage& out);

// Like resolveAddress, and host names too, through the system resolver (getaddrinfo; the
// first answer wins). Blocking: for the main thread when a config is loaded and for
// command-line tools, never on a worker's loop. Returns 0, or -1 with `error` set.
int lookupAddress(const std::string& host, uint16_t port, sockaddr_storage& out, std::string& error);

}  // namespace flowguard::core
