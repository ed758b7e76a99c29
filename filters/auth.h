// `auth`: requests must present a known API key, in the configured header (X-API-Key by
// default) or as `Authorization: Bearer <key>`. Missing or unknown key → 401 JSON, unless
// the request matches an exempt route. The key is looked up by its SHA-256 digest in the
// KeyRegistry snapshot; the caller's identity goes into StreamInfo::apiKey for the filters
// after it (rate limit, metrics, logs); the key header is removed before forwarding.
#pragma once

#include <memory>

#include "config/config.h"
#include "core/filter.h"
#include "filters/key_registry.h"

namespace flowguard::filters {

class AuthFilterFactory : public core::FilterFactory {
 public:
  // `registry` is shared by every worker (built once per listener).
  AuthFilterFactory(const config::AuthConfig& config, std::shared_ptr<KeyRegistry> registry)
      : config_(config), registry_(std::move(registry)), view_(*registry_) {}
  std::unique_ptr<core::Filter> create() override;

 private:
  friend class AuthFilter;
  const config::AuthConfig& config_;
  std::shared_ptr<KeyRegistry> registry_;
  KeyRegistry::View view_;  // this worker's cached snapshot
};

class AuthFilter final : public core::Filter {
 public:
  explicit AuthFilter(AuthFilterFactory& factory) : factory_(factory) {}
  core::FilterStatus onRequest() override;

 private:
  AuthFilterFactory& factory_;
};

}  // namespace flowguard::filters
