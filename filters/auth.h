// `auth`: requests must present a known API key, in the configured header (X-API-Key by
// default) or as `Authorization: Bearer <key>`. Missing or unknown key → 401 JSON, unless
// the request matches an exempt entry and the router answers it itself. The key is looked up by its SHA-256
// digest in the KeyRegistry snapshot (a key seen lately, in this worker's RecentKeys first); the caller's
// identity goes into StreamInfo::apiKey for the filters after it (rate limit, metrics, logs); every header
// that can carry a key is removed before forwarding, on every request.
#pragma once

#include <memory>
#include <optional>

#include "config/config.h"
#include "core/filter.h"
#include "filters/key_registry.h"
#include "filters/recent_keys.h"

namespace flowguard::filters {

class AuthFilterFactory : public core::FilterFactory {
 public:
  // `registry` is shared by every worker (built once per listener).
  // `stored`: keys from the key store, consulted after the yaml's (null: none).
  // `router`: the listener's routes, which decide whether an exempt request is answered by
  // the gateway (exempt) or forwarded (needs a key after all).
  AuthFilterFactory(const config::AuthConfig& config, const config::RouterConfig* router,
                    std::shared_ptr<KeyRegistry> registry, std::shared_ptr<KeyRegistry> stored)
      : config_(config),
        router_(router),
        registry_(std::move(registry)),
        view_(*registry_),
        stored_(std::move(stored)) {
    if (router_ != nullptr) {
      for (const auto& route : router_->routes) routesDisableAuth_ = routesDisableAuth_ || route.authDisabled;
    }
    if (stored_) storedView_.emplace(*stored_);
  }
  // The record of a presented key, from the yaml or the key store; null when unknown.
  std::shared_ptr<const ApiKeyRecord> find(std::string_view key);
  std::unique_ptr<core::Filter> create() override;
  // True when the request needs no key: its route disables auth, or it matches an exempt
  // entry and its route is a direct response or a handler, not a cluster.
  bool exempt(const core::RequestHead& head, core::StreamInfo& info) const;
  // Removes the key header and, when bearer keys are allowed, `Authorization: Bearer`.
  void stripKeys(core::HeaderMap& headers) const;

 private:
  friend class AuthFilter;
  const config::AuthConfig& config_;
  const config::RouterConfig* router_;
  bool routesDisableAuth_ = false;  // some route has per_filter auth disabled: match every request
  std::shared_ptr<KeyRegistry> registry_;
  KeyRegistry::View view_;  // this worker's cached snapshot
  std::shared_ptr<KeyRegistry> stored_;
  std::optional<KeyRegistry::View> storedView_;
  RecentKeys recent_;   // keys found lately, valid while neither registry publishes
  uint64_t epoch_ = 0;  // advanced when either view takes up a new snapshot
};

class AuthFilter final : public core::Filter {
 public:
  explicit AuthFilter(AuthFilterFactory& factory) : factory_(factory) {}
  core::FilterStatus onRequest() override;

 private:
  AuthFilterFactory& factory_;
};

}  // namespace flowguard::filters
