// The embedded store: one SQLite file, shared safely by several gateway processes (WAL
// journal, a busy timeout, BEGIN IMMEDIATE for every write so writers queue instead of
// failing on a lock upgrade). Used by one thread only, like every Store.
#pragma once

#include <string>
#include <unordered_map>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace flowguard::store {

class SqliteStore final : public Store {
 public:
  // `path` as given to sqlite3_open_v2 (a file path, or ":memory:"). Does not open yet.
  explicit SqliteStore(std::string path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  const std::string& path() const { return path_; }

  std::string kind() const override { return "sqlite"; }
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
  class Statement;
  class Transaction;

  void close();
  void migrate();
  // Bumps key_version inside the caller's transaction and returns the new value.
  int64_t nextKeyVersion();
  // Inserts an api_keys row inside the caller's transaction; returns its id.
  int64_t insertRow(const NewKey& key, int64_t version, bool configured);
  sqlite3* db();  // throws StoreUnavailable when not open
  // A cached prepared statement for `sql`, reset and with its bindings cleared.
  Statement statement(const std::string& sql);
  void exec(const char* sql);
  [[noreturn]] void fail(int rc, const std::string& what);
  std::vector<KeyListing> selectListings(const std::string& where, int64_t id, const Digest* digest);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace flowguard::store
