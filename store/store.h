// API keys and request logs in a database: one interface, two implementations (SQLite,
// embedded, the default; PostgreSQL through libpqxx for deployments that share keys and logs
// between gateway replicas).
//
// A Store is used by exactly one thread, the store thread (store_service.h): every call
// blocks on the database, so nothing on a worker's loop ever calls it. Errors are
// exceptions: StoreUnavailable when the database cannot be reached (the caller reconnects
// with open() after a backoff), StoreError for anything else. All SQL is parameterised;
// nothing from a request is ever spliced into a statement.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace flowguard::store {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The database is down or the connection broke; open() again later.
class StoreUnavailable : public StoreError {
 public:
  using StoreError::StoreError;
};

// insertKey with NewKey::uniqueName: an active key already has that name.
class NameTaken : public StoreError {
 public:
  using StoreError::StoreError;
};

using Digest = std::array<unsigned char, 32>;  // SHA-256 of an API key

// A row of api_keys. The key itself is never stored: only its digest and a display prefix.
struct StoredKey {
  int64_t id = 0;
  Digest digest{};
  std::string prefix;  // the key's first characters, to recognise it in listings and logs
  std::string name;
  std::string plan;
  std::string limits;       // a per-key limit as JSON, "" when the plan's limit applies
  int64_t createdAtMs = 0;  // unix time, ms
  std::optional<int64_t> revokedAtMs;
  // Grows on every change to any key (insert, revoke) across every gateway sharing the
  // database: pollers ask for keysChangedSince(the largest version they have seen).
  int64_t version = 0;
  // Written in flowguard.yaml (syncConfiguredKeys): the file authenticates it, so the key
  // store's own key set leaves it out; it has usage like any key and cannot be revoked
  // through the API.
  bool configured = false;
};

struct NewKey {
  Digest digest{};
  std::string prefix;
  std::string name;
  std::string plan;
  std::string limits;
  int64_t createdAtMs = 0;
  bool uniqueName = false;  // insertKey: throw NameTaken when an active key has this (non-empty) name
};

// What was done with a key, kept per key as rows of request_log are appended.
struct KeyUsage {
  int64_t requests = 0;
  int64_t status2xx = 0;
  int64_t status3xx = 0;
  int64_t status4xx = 0;  // includes the 429s
  int64_t status429 = 0;
  int64_t status5xx = 0;
  std::optional<int64_t> lastUsedMs;
};

struct KeyListing {
  StoredKey key;
  KeyUsage usage;
};

// One request, as the request log keeps it.
struct LogRecord {
  int64_t timeMs = 0;  // when the request arrived, unix ms
  std::string requestId;
  int64_t keyId = 0;  // a stored key's id; 0 when the request had none
  // A key written in flowguard.yaml, whose id only the store thread knows (StoreService
  // fills keyId in from it before the record is written).
  std::optional<Digest> configuredKey;
  std::string keyPrefix;  // "" without a key
  std::string listener;
  std::string route;
  std::string method;
  std::string path;
  int status = 0;
  std::string upstream;  // host:port that answered; "" for a local reply
  int64_t latencyUs = 0;
  int64_t bytesIn = 0;   // request body bytes received
  int64_t bytesOut = 0;  // response body bytes sent
};

struct LogRow {
  int64_t id = 0;
  LogRecord record;
};

struct LogQuery {
  size_t limit = 100;         // newest first, at most this many
  std::string keyPrefix;      // "" = any
  std::optional<int> status;  // exact status
  std::optional<int64_t> keyId;
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgres", for log lines.
  virtual std::string kind() const = 0;

  // Connects (or reconnects after StoreUnavailable) and creates or migrates the schema to
  // the current version (table schema_version). Idempotent.
  virtual void open() = 0;

  // Inserts a key; returns the stored row (id, version). Throws StoreError when the digest
  // already exists, NameTaken as NewKey::uniqueName says.
  virtual StoredKey insertKey(const NewKey& key) = 0;
  // Makes the configured rows match `keys`, the keys written in flowguard.yaml: each gets a
  // row (inserted, or an existing row by digest updated to its name and plan, marked
  // configured and active again), and every other configured row that is still active is
  // revoked at `atMs` (the key left the file). Rows that change get a new version. Returns
  // the rows of `keys`, in their order.
  virtual std::vector<StoredKey> syncConfiguredKeys(const std::vector<NewKey>& keys, int64_t atMs) = 0;
  // Marks a key revoked now; false when there is no such key or it was revoked already.
  virtual bool revokeKey(int64_t id, int64_t atMs) = 0;
  // Moves an active key to `plan` (its own limits, if any, are dropped: the plan's apply);
  // false when there is no such active key.
  virtual bool setKeyPlan(int64_t id, const std::string& plan) = 0;
  // Every key (revoked ones included) whose version is above `version`, by version.
  virtual std::vector<StoredKey> keysChangedSince(int64_t version) = 0;

  // Keys with their usage, by id: at most `limit` of them with an id above `afterId` (a page;
  // the next one starts after the last id returned).
  virtual std::vector<KeyListing> listKeys(int64_t afterId = 0, int64_t limit = INT64_MAX) = 0;
  // How many keys there are, and how many of them are not revoked.
  virtual std::pair<int64_t, int64_t> countKeys() = 0;
  virtual std::optional<KeyListing> findKey(int64_t id) = 0;
  virtual std::optional<KeyListing> findKeyByDigest(const Digest& digest) = 0;

  // Appends a batch in one transaction (PostgreSQL: COPY through pqxx::stream_to; SQLite:
  // one prepared INSERT in a transaction) and adds it to the usage of the keys it names.
  virtual void appendLogs(std::span<const LogRecord> records) = 0;
  virtual std::vector<LogRow> queryLogs(const LogQuery& query) = 0;
  // Latencies of a key's newest `limit` logged requests, in no particular order.
  virtual std::vector<int64_t> recentLatenciesUs(int64_t keyId, size_t limit) = 0;
};

// storage.url: sqlite://PATH (sqlite:///abs/path.db, sqlite://./relative.db) or
// postgres://user[:password]@host[:port]/db (also postgresql://). `password`, when not
// empty, replaces the URL's. Does not connect yet. Throws StoreError on an unknown scheme.
std::unique_ptr<Store> makeStore(const std::string& url, const std::string& password = {});

}  // namespace flowguard::store
