// The admin listener's only filter: checks the token, then answers each admin endpoint
// (see admin_server.h for the list). Store-backed endpoints (/keys, /logs, ...) go through
// the same StoreHandler as the public listeners' `handler:` routes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "admin/admin_stats.h"
#include "config/config.h"
#include "core/filter.h"
#include "filters/key_registry.h"
#include "filters/store_handlers.h"
#include "store/store_client.h"

namespace flowguard::admin {

class AdminFilterFactory : public core::FilterFactory {
 public:
  AdminFilterFactory(const config::Config& config, AdminStats& stats, store::StoreClient* store);
  std::unique_ptr<core::Filter> create() override;

 private:
  friend class AdminFilter;
  const config::Config& config_;
  AdminStats& stats_;
  store::StoreClient* store_;
  std::optional<filters::KeyDigest> tokenDigest_;  // set when admin.token is
  // The store handlers' routes: fixed, so StoreHandler can keep a reference.
  config::Route listKeys_, viewLogs_, revokeKey_, keyMetrics_;
  std::string configDump_;  // rendered once: the config does not change under a running listener
};

class AdminFilter final : public core::Filter {
 public:
  explicit AdminFilter(AdminFilterFactory& factory) : factory_(factory) {}
  core::FilterStatus onRequest() override;
  void onRequestBody(std::string_view data, bool endStream, const core::HeaderMap* trailers) override;
  void onComplete(const core::StreamInfo& info) override;

 private:
  void json(int status, const nlohmann::json& body);
  void storeRequest(const config::Route& route, std::optional<std::string> argument = std::nullopt);

  AdminFilterFactory& factory_;
  std::unique_ptr<filters::StoreHandler> handler_;
};

// The running config as JSON with every secret (keys, passwords, tokens) masked.
nlohmann::json configDump(const config::Config& config);

}  // namespace flowguard::admin
