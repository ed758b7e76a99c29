// The admin listener: a separate HTTP listener on the main thread for operators. It reuses
// the gateway's own HTTP/1.1 connection code with a one-filter chain (AdminFilter), so it
// has the same strict parsing and timeouts as the public listeners.
//
// The endpoints are one table, AdminFilter::endpoints() in admin_filter.cc (path, methods,
// help, answer); GET /help lists it.
//
// With a token (admin.token, or the one generated when the listener is not on loopback),
// every request needs `Authorization: Bearer <token>` (digests are
// compared, not strings), except the dashboard page itself, which reads the token from
// /server#token=... and sends it with its own requests. Mutations answer only to POST,
// PATCH and DELETE.
#pragma once

#include <memory>
#include <string>

#include <uv.h>

#include "admin/admin_filter.h"
#include "admin/admin_stats.h"
#include "config/config.h"
#include "core/dispatcher.h"
#include "core/filter_chain.h"
#include "core/listener.h"
#include "core/listener_settings.h"
#include "core/uv_handle.h"
#include "store/store_client.h"

namespace flowguard::admin {

class AdminServer {
 public:
  // `live.config->admin` must be configured. `store` may be null (no storage); so may
  // `reload` (POST /reload then answers 503). `token`: the bearer token every request needs
  // ("" = none), the file's or the one the gateway generated (gateway/admin_token.h).
  AdminServer(uv_loop_t* loop, const config::LiveConfig& live, AdminStats& stats, store::StoreService* store,
              ReloadFunction reload, const std::string& token);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the listener and starts the 1-second stats sampler. False (with error()) when the
  // address cannot be bound.
  bool start();
  const std::string& error() const { return error_; }
  // Stops accepting and closes every handle (connections too). Idempotent.
  void close();

 private:
  uv_loop_t* loop_;
  AdminStats& stats_;
  core::Dispatcher dispatcher_;
  std::unique_ptr<store::StoreClient> storeClient_;
  std::shared_ptr<core::ListenerContext> context_;
  std::unique_ptr<core::Listener> listener_;
  core::UvHandle<uv_timer_t> sampler_;  // samples the stats once a second
  std::string error_;
  bool closed_ = false;
};

}  // namespace flowguard::admin
