// The admin listener's only filter: checks the token, then answers each admin endpoint
// (one table, AdminFilter::endpoints(); GET /help lists it). Store-backed endpoints (/keys, /logs, ...) go
// through the same StoreHandler as the public listeners' `handler:` routes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/admin_stats.h"
#include "config/config.h"
#include "config/live_config.h"
#include "core/filter.h"
#include "filters/key_registry.h"
#include "filters/store_handlers.h"
#include "store/store_client.h"

namespace flowguard::admin {

// POST /reload: applies the config file now, on the main thread, and says how it went.
using ReloadFunction = std::function<config::ReloadAttempt()>;

class AdminFilterFactory : public core::FilterFactory {
 public:
  // `live` is read at each request: the config in force changes with every reload. The
  // admin section itself (address, token) is the one the listener was started with.
  // `token` "" means none is required.
  AdminFilterFactory(const config::LiveConfig& live, AdminStats& stats, store::StoreClient* store,
                     ReloadFunction reload, const std::string& token);
  std::unique_ptr<core::Filter> create() override;

 private:
  friend class AdminFilter;
  const config::LiveConfig& live_;
  AdminStats& stats_;
  store::StoreClient* store_;
  ReloadFunction reload_;
  std::optional<filters::KeyDigest> tokenDigest_;  // set when a token is required
  // The store handlers' routes: fixed, so StoreHandler can keep a reference.
  config::Route listKeys_, viewLogs_, revokeKey_, updateKey_, keyMetrics_;
};

class AdminFilter final : public core::Filter {
 public:
  explicit AdminFilter(AdminFilterFactory& factory) : factory_(factory) {}
  core::FilterStatus onRequest() override;
  void onRequestBody(std::string_view data, bool endStream, const core::HeaderMap* trailers) override;
  void onComplete(const core::StreamInfo& info) override;

  // One admin endpoint: its path, where one {placeholder} may stand for a non-empty part
  // (passed to `answer` as `argument`); the methods it takes (GET includes HEAD); and what
  // GET /help says of it. The first entry whose path matches answers.
  struct Endpoint {
    std::string_view path;
    std::string_view methods;  // "GET", "POST" or "PATCH, DELETE"
    std::string_view help;
    void (*answer)(AdminFilter& self, std::string_view method, std::string_view argument);
  };
  static const std::vector<Endpoint>& endpoints();

 private:
  void json(int status, const nlohmann::json& body);
  void storeRequest(const config::Route& route, std::optional<std::string> argument = std::nullopt);
  bool refuseCrossSite(const core::RequestHead& head);

  AdminFilterFactory& factory_;
  // The config a store request started with: a reload meanwhile must not free it.
  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<filters::StoreHandler> handler_;
};

// The running config as JSON with every secret (keys, passwords, tokens) masked.
nlohmann::json configDump(const config::Config& config);
// GET /config_dump: the config, its generation and load time, and the reload history.
nlohmann::json liveConfigDump(const config::LiveConfig& live);
nlohmann::json reloadAttemptJson(const config::ReloadAttempt& attempt);

}  // namespace flowguard::admin
