// The router's store-backed answers (a route's `handler:`): /register, /all_keys,
// /view_logs, /metrics/{api-key} and DELETE /keys/{id}. Each request gets one StoreHandler;
// it validates the request on the worker, runs one job on the store thread (StoreClient) and
// answers from the job's outcome back on the worker. Every answer is JSON; a database that
// cannot be reached is a 503 saying so.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/filter.h"
#include "store/store_client.h"

namespace flowguard::filters {

class LocalRateLimitStore;

class StoreHandler {
 public:
  // `store` null: every request gets 503. Used by the router (a route's `handler:`) and by
  // the admin listener (its own routes).
  StoreHandler(const config::Route& route, store::StoreClient* store, const config::Config& config,
               core::FilterCallbacks& callbacks);
  ~StoreHandler();  // a job still running is forgotten: its answer is dropped
  StoreHandler(const StoreHandler&) = delete;
  StoreHandler& operator=(const StoreHandler&) = delete;

  // The key or key id, when it is not the rest of the path after the route's prefix
  // (the admin listener's /keys/{key}/metrics). Before start().
  void setArgument(std::string argument) { argument_ = std::move(argument); }
  // Counts POST /register per client address (register: per_ip), shared by every worker.
  // Null: not limited (the admin listener).
  void setRegistrationLimiter(LocalRateLimitStore* limiter) { registrations_ = limiter; }
  // From the router's onRequest.
  void start();
  // From the router's onRequestBody (register reads a JSON body).
  void onBody(std::string_view data, bool endStream);

 private:
  bool registrationAllowed();
  void handleRegister();
  void handleListKeys();
  void handleViewLogs();
  void handleKeyMetrics();
  void handleRevokeKey();
  void handleUpdateKey();
  // Runs `work` on the store thread; it returns {"status": N, "body": {...}} (sent as is) or
  // {"status": N, "error": "..."} (sent as a local error reply).
  void run(store::StoreService::Work work, bool touchesKeys = false);
  void fail(int status, std::string_view reason);
  // The rest of the path after the route's prefix, percent-decoded.
  std::string pathArgument() const;

  const config::Route& route_;
  store::StoreClient* store_;
  const config::Config& config_;
  core::FilterCallbacks& callbacks_;
  std::optional<std::string> argument_;
  LocalRateLimitStore* registrations_ = nullptr;
  std::string body_;
  bool bodyTooLarge_ = false;
  store::StoreClient::Handle job_ = 0;
};

// A new API key: "fg_" and 32 characters of base64url from 24 bytes of a CSPRNG (192 bits).
std::string generateApiKey();

// %XX decoding (and '+' as a space in query values); nullopt for a malformed escape.
std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace);

}  // namespace flowguard::filters
