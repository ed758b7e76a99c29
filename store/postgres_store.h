// The shared store: PostgreSQL through libpqxx, for gateway replicas that share keys and
// logs. One connection, used by one thread (the store thread). A lost connection turns
// every call into StoreUnavailable until open() connects again.
#pragma once

#include <memory>
#include <pqxx/connection>
#include <string>

#include "store/store.h"

namespace flowguard::store {

// The libpq connection URL for a postgres:// or postgresql:// storage url: `password`, when
// not empty, replaces the URL's (as a percent-encoded password= parameter), and
// connect_timeout=2 is added unless the URL sets one, so an unreachable server fails a call
// instead of hanging the store thread.
std::string postgresConnectionUrl(const std::string& url, const std::string& password);

class PostgresStore final : public Store {
 public:
  // `url` is handed to libpq as is (see postgresConnectionUrl). Does not connect yet.
  explicit PostgresStore(std::string url);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  std::string kind() const override { return "postgres"; }
  void open() override;
  StoredKey insertKey(const NewKey& key) override;
  std::vector<StoredKey> syncConfiguredKeys(const std::vector<NewKey>& keys, int64_t atMs) override;
  bool revokeKey(int64_t id, int64_t atMs) override;
  bool setKeyPlan(int64_t id, const std::string& plan) override;
  std::vector<StoredKey> keysChangedSince(int64_t version) override;
  std::vector<KeyListing> listKeys(int64_t afterId = 0, int64_t limit = INT64_MAX) override;
  std::pair<int64_t, int64_t> countKeys() override;
  std::optional<KeyListing> findKey(int64_t id) override;
  std::optional<KeyListing> findKeyByDigest(const Digest& digest) override;
  void appendLogs(std::span<const LogRecord> records) override;
  std::vector<LogRow> queryLogs(const LogQuery& query) override;
  std::vector<int64_t> recentLatenciesUs(int64_t keyId, size_t limit) override;

 private:
  // Runs `body` with the connection, translating libpqxx errors into StoreUnavailable
  // (dropping the connection) or StoreError.
  template <typename Body>
  auto guarded(const char* what, Body&& body);
  // A fresh connection with the statements prepared; throws StoreUnavailable.
  void connect();
  void migrate();

  std::string url_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace flowguard::store
