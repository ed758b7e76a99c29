#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <set>

#include "store/usage_delta.h"

namespace flowguard::store {

namespace {

// Several gateway processes may write the same file; a writer waits this long for the lock
// before the call fails with StoreUnavailable.
constexpr int kBusyTimeoutMs = 10000;

// Step i brings the schema from version i to i + 1. A new version appends a step; a
// released step never changes.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  digest BLOB NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  name TEXT NOT NULL,
  plan TEXT NOT NULL,
  limits TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER,
  version INTEGER NOT NULL
);
CREATE INDEX api_keys_version ON api_keys (version);
-- One row: the largest key version handed out, bumped in the writing transaction, so
-- versions grow across every process sharing the file.
CREATE TABLE key_version (value INTEGER NOT NULL);
INSERT INTO key_version (value) VALUES (0);
CREATE TABLE key_usage (
  key_id INTEGER PRIMARY KEY,
  requests INTEGER NOT NULL,
  s2xx INTEGER NOT NULL,
  s3xx INTEGER NOT NULL,
  s4xx INTEGER NOT NULL,
  s429 INTEGER NOT NULL,
  s5xx INTEGER NOT NULL,
  last_used_ms INTEGER NOT NULL
);
CREATE TABLE request_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  key_id INTEGER NOT NULL,
  key_prefix TEXT NOT NULL,
  listener TEXT NOT NULL,
  route TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  status INTEGER NOT NULL,
  upstream TEXT NOT NULL,
  latency_us INTEGER NOT NULL,
  bytes_in INTEGER NOT NULL,
  bytes_out INTEGER NOT NULL
);
CREATE INDEX request_log_key ON request_log (key_id, id);
CREATE INDEX request_log_prefix ON request_log (key_prefix, id);
)sql",
    // 2: the request-log indexes cover only requests that carried a key (those are the only
    // ones looked up by key): anonymous traffic costs no index update. Queries repeat the
    // predicates literally so the planner can use these partial indexes.
    R"sql(
DROP INDEX request_log_key;
DROP INDEX request_log_prefix;
DROP INDEX IF EXISTS request_log_status;
CREATE INDEX request_log_key ON request_log (key_id, id) WHERE key_id <> 0;
CREATE INDEX request_log_prefix ON request_log (key_prefix, id) WHERE key_prefix <> '';
)sql",
    // 3: keys written in flowguard.yaml get a row too (usage, listings), marked so.
    R"sql(
ALTER TABLE api_keys ADD COLUMN configured INTEGER NOT NULL DEFAULT 0;
)sql",
};
constexpr int64_t kSchemaVersion = static_cast<int64_t>(std::size(kMigrations));

bool isUnavailable(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL:
      return true;
    default:
      return false;
  }
}

constexpr const char* kKeyColumns =
    "k.id, k.digest, k.prefix, k.name, k.plan, k.limits, k.created_at_ms, k.revoked_at_ms, k.version, "
    "k.configured";
constexpr int kKeyColumnCount = 10;
constexpr const char* kUsageColumns = "u.requests, u.s2xx, u.s3xx, u.s4xx, u.s429, u.s5xx, u.last_used_ms";
constexpr const char* kLogColumns =
    "id, time_ms, request_id, key_id, key_prefix, listener, route, method, path, status, upstream, "
    "latency_us, bytes_in, bytes_out";

}  // namespace

// A cached statement in use: resets it (and clears its bindings) when done.
class SqliteStore::Statement {
 public:
  Statement(SqliteStore& store, sqlite3_stmt* stmt) : store_(store), stmt_(stmt) {}
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    return *this;
  }
  // Without a copy: `value` must stay unchanged until the statement has run.
  Statement& bindUnowned(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC));
    return *this;
  }
  Statement& bind(int index, const Digest& digest) {
    check(sqlite3_bind_blob(stmt_, index, digest.data(), static_cast<int>(digest.size()), SQLITE_TRANSIENT));
    return *this;
  }

  // True when a row is available, false when the statement is done.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    store_.fail(rc, "statement failed");
  }
  void run() {
    while (step()) {
    }
  }
  void reset() { sqlite3_reset(stmt_); }

  bool isNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  Digest digest(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    Digest d{};
    if (p == nullptr || n != static_cast<int>(d.size()))
      throw StoreError("sqlite: api_keys.digest is not 32 bytes");
    std::memcpy(d.data(), p, d.size());
    return d;
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) store_.fail(rc, "bind failed");
  }

  SqliteStore& store_;
  sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so two
// processes never deadlock upgrading a read lock. Rolls back unless committed.
class SqliteStore::Transaction {
 public:
  explicit Transaction(SqliteStore& store) : store_(store) { store_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    store_.exec("COMMIT");
    done_ = true;
  }

 private:
  SqliteStore& store_;
  bool done_ = false;
};

namespace {

// Reads kKeyColumns starting at `first`.
template <typename Row>
StoredKey readKey(const Row& row, int first) {
  StoredKey k;
  k.id = row.int64(first);
  k.digest = row.digest(first + 1);
  k.prefix = row.text(first + 2);
  k.name = row.text(first + 3);
  k.plan = row.text(first + 4);
  k.limits = row.text(first + 5);
  k.createdAtMs = row.int64(first + 6);
  if (!row.isNull(first + 7)) k.revokedAtMs = row.int64(first + 7);
  k.version = row.int64(first + 8);
  k.configured = row.int64(first + 9) != 0;
  return k;
}

// Reads kUsageColumns starting at `first` (all NULL when the key has no usage row).
template <typename Row>
KeyUsage readUsage(const Row& row, int first) {
  KeyUsage u;
  if (row.isNull(first)) return u;
  u.requests = row.int64(first);
  u.status2xx = row.int64(first + 1);
  u.status3xx = row.int64(first + 2);
  u.status4xx = row.int64(first + 3);
  u.status429 = row.int64(first + 4);
  u.status5xx = row.int64(first + 5);
  u.lastUsedMs = row.int64(first + 6);
  return u;
}

}  // namespace

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() {
  close();
}

void SqliteStore::close() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  statements_.clear();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

sqlite3* SqliteStore::db() {
  if (!db_) throw StoreUnavailable("sqlite: " + path_ + " is not open");
  return db_;
}

void SqliteStore::fail(int rc, const std::string& what) {
  std::string message =
      "sqlite " + path_ + ": " + what + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  if (isUnavailable(rc)) throw StoreUnavailable(message);
  throw StoreError(message);
}

void SqliteStore::exec(const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db(), sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return;
  std::string message = error ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  std::string text = "sqlite " + path_ + ": " + message;
  if (isUnavailable(rc)) throw StoreUnavailable(text);
  throw StoreError(text);
}

SqliteStore::Statement SqliteStore::statement(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db(), sql.c_str(), static_cast<int>(sql.size() + 1),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      fail(rc, "cannot prepare statement");
    }
    it = statements_.emplace(sql, stmt).first;
  }
  return Statement(*this, it->second);
}

void SqliteStore::open() {
  if (!db_) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      throw StoreUnavailable("sqlite: cannot open " + path_ + ": " + message);
    }
    db_ = db;
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    try {
      // WAL lets the other gateways read while one writes; NORMAL sync is durable in WAL
      // mode except for the last transactions before a power loss.
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=NORMAL");
    } catch (...) {
      close();
      throw;
    }
  }
  migrate();
}

void SqliteStore::migrate() {
  Transaction tx(*this);
  exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  int64_t current = 0;
  {
    Statement st = statement("SELECT max(version) FROM schema_version");
    if (st.step() && !st.isNull(0)) current = st.int64(0);
  }
  if (current > kSchemaVersion) {
    throw StoreError("sqlite " + path_ + ": schema version " + std::to_string(current) +
                     " is newer than this gateway's " + std::to_string(kSchemaVersion));
  }
  if (current == kSchemaVersion) return;
  for (int64_t v = current; v < kSchemaVersion; ++v) exec(kMigrations[v]);
  exec("DELETE FROM schema_version");
  statement("INSERT INTO schema_version (version) VALUES (?)").bind(1, kSchemaVersion).run();
  tx.commit();
}

int64_t SqliteStore::nextKeyVersion() {
  Statement st = statement("UPDATE key_version SET value = value + 1 RETURNING value");
  if (!st.step()) throw StoreError("sqlite " + path_ + ": key_version has no row");
  const int64_t version = st.int64(0);
  st.run();
  return version;
}

int64_t SqliteStore::insertRow(const NewKey& key, int64_t version, bool configured) {
  statement(
      "INSERT INTO api_keys (digest, prefix, name, plan, limits, created_at_ms, version, configured) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, key.digest)
      .bind(2, key.prefix)
      .bind(3, key.name)
      .bind(4, key.plan)
      .bind(5, key.limits)
      .bind(6, key.createdAtMs)
      .bind(7, version)
      .bind(8, int64_t{configured})
      .run();
  return sqlite3_last_insert_rowid(db_);
}

StoredKey SqliteStore::insertKey(const NewKey& key) {
  Transaction tx(*this);  // BEGIN IMMEDIATE: the name check and the insert are one step
  if (key.uniqueName && !key.name.empty()) {
    Statement st = statement("SELECT 1 FROM api_keys WHERE name = ? AND revoked_at_ms IS NULL");
    st.bind(1, key.name);
    if (st.step()) throw NameTaken("an active key is already named '" + key.name + "'");
  }
  const int64_t version = nextKeyVersion();
  StoredKey stored;
  stored.id = insertRow(key, version, false);
  tx.commit();
  stored.digest = key.digest;
  stored.prefix = key.prefix;
  stored.name = key.name;
  stored.plan = key.plan;
  stored.limits = key.limits;
  stored.createdAtMs = key.createdAtMs;
  stored.version = version;
  return stored;
}

bool SqliteStore::revokeKey(int64_t id, int64_t atMs) {
  Transaction tx(*this);
  {
    Statement st = statement("SELECT 1 FROM api_keys WHERE id = ? AND revoked_at_ms IS NULL");
    st.bind(1, id);
    if (!st.step()) return false;
  }
  const int64_t version = nextKeyVersion();
  statement("UPDATE api_keys SET revoked_at_ms = ?, version = ? WHERE id = ?")
      .bind(1, atMs)
      .bind(2, version)
      .bind(3, id)
      .run();
  tx.commit();
  return true;
}

bool SqliteStore::setKeyPlan(int64_t id, const std::string& plan) {
  Transaction tx(*this);
  {
    Statement st = statement("SELECT 1 FROM api_keys WHERE id = ? AND revoked_at_ms IS NULL");
    st.bind(1, id);
    if (!st.step()) return false;
  }
  const int64_t version = nextKeyVersion();
  statement("UPDATE api_keys SET plan = ?, limits = '', version = ? WHERE id = ?")
      .bind(1, plan)
      .bind(2, version)
      .bind(3, id)
      .run();
  tx.commit();
  return true;
}

std::vector<StoredKey> SqliteStore::syncConfiguredKeys(const std::vector<NewKey>& keys, int64_t atMs) {
  Transaction tx(*this);
  std::optional<int64_t> version;  // one new version for every row this sync changes
  auto changeVersion = [&] {
    if (!version) version = nextKeyVersion();
    return *version;
  };
  std::set<Digest> wanted;
  for (const NewKey& key : keys) {
    wanted.insert(key.digest);
    Statement find = statement("SELECT name, plan, configured, revoked_at_ms FROM api_keys WHERE digest = ?");
    find.bind(1, key.digest);
    if (!find.step()) {
      insertRow(key, changeVersion(), true);
      continue;
    }
    const bool same =
        find.text(0) == key.name && find.text(1) == key.plan && find.int64(2) != 0 && find.isNull(3);
    if (same) continue;
    statement(
        "UPDATE api_keys SET name = ?, plan = ?, configured = 1, revoked_at_ms = NULL, version = ? "
        "WHERE digest = ?")
        .bind(1, key.name)
        .bind(2, key.plan)
        .bind(3, changeVersion())
        .bind(4, key.digest)
        .run();
  }
  std::vector<int64_t> gone;
  {
    Statement st =
        statement("SELECT id, digest FROM api_keys WHERE configured = 1 AND revoked_at_ms IS NULL");
    while (st.step()) {
      if (!wanted.contains(st.digest(1))) gone.push_back(st.int64(0));
    }
  }
  for (int64_t id : gone) {
    statement("UPDATE api_keys SET revoked_at_ms = ?, version = ? WHERE id = ?")
        .bind(1, atMs)
        .bind(2, changeVersion())
        .bind(3, id)
        .run();
  }
  std::vector<StoredKey> rows;
  for (const NewKey& key : keys) {
    Statement st = statement(std::string("SELECT ") + kKeyColumns + " FROM api_keys k WHERE k.digest = ?");
    st.bind(1, key.digest);
    if (!st.step()) throw StoreError("sqlite " + path_ + ": a configured key vanished during its sync");
    rows.push_back(readKey(st, 0));
  }
  tx.commit();
  return rows;
}

std::vector<StoredKey> SqliteStore::keysChangedSince(int64_t version) {
  Statement st = statement(std::string("SELECT ") + kKeyColumns +
                           " FROM api_keys k WHERE k.version > ? ORDER BY k.version");
  st.bind(1, version);
  std::vector<StoredKey> keys;
  while (st.step()) keys.push_back(readKey(st, 0));
  return keys;
}

std::vector<KeyListing> SqliteStore::listKeys(int64_t afterId, int64_t limit) {
  Statement st = statement(std::string("SELECT ") + kKeyColumns + ", " + kUsageColumns +
                           " FROM api_keys k LEFT JOIN key_usage u ON u.key_id = k.id WHERE k.id > ? "
                           "ORDER BY k.id LIMIT ?");
  st.bind(1, afterId).bind(2, limit);
  std::vector<KeyListing> out;
  while (st.step()) out.push_back({readKey(st, 0), readUsage(st, kKeyColumnCount)});
  return out;
}

std::pair<int64_t, int64_t> SqliteStore::countKeys() {
  Statement st = statement("SELECT count(*), count(*) - count(revoked_at_ms) FROM api_keys");
  if (!st.step()) return {0, 0};
  return {st.int64(0), st.int64(1)};
}

std::optional<KeyListing> SqliteStore::findKey(int64_t id) {
  Statement st = statement(std::string("SELECT ") + kKeyColumns + ", " + kUsageColumns +
                           " FROM api_keys k LEFT JOIN key_usage u ON u.key_id = k.id WHERE k.id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return KeyListing{readKey(st, 0), readUsage(st, kKeyColumnCount)};
}

std::optional<KeyListing> SqliteStore::findKeyByDigest(const Digest& digest) {
  Statement st = statement(std::string("SELECT ") + kKeyColumns + ", " + kUsageColumns +
                           " FROM api_keys k LEFT JOIN key_usage u ON u.key_id = k.id WHERE k.digest = ?");
  st.bind(1, digest);
  if (!st.step()) return std::nullopt;
  return KeyListing{readKey(st, 0), readUsage(st, kKeyColumnCount)};
}

void SqliteStore::appendLogs(std::span<const LogRecord> records) {
  if (records.empty()) return;
  Transaction tx(*this);
  {
    // Rows go in kRowsPerInsert at a time: one statement step per row costs more than the
    // row itself (the request log is written at the gateway's request rate).
    constexpr int kColumns = 13;
    constexpr size_t kRowsPerInsert = 32;
    auto insertSql = [](size_t rows) {
      std::string sql =
          "INSERT INTO request_log (time_ms, request_id, key_id, key_prefix, listener, route, method, path, "
          "status, upstream, latency_us, bytes_in, bytes_out) VALUES ";
      for (size_t i = 0; i < rows; ++i)
        sql += i == 0 ? "(?,?,?,?,?,?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?,?,?,?,?,?)";
      return sql;
    };
    static const std::string kManyRows = insertSql(kRowsPerInsert);
    static const std::string kOneRow = insertSql(1);
    auto bindRow = [](Statement& st, int row, const LogRecord& r) {
      const int base = row * kColumns;
      st.bind(base + 1, r.timeMs)
          .bindUnowned(base + 2, r.requestId)
          .bind(base + 3, r.keyId)
          .bindUnowned(base + 4, r.keyPrefix)
          .bindUnowned(base + 5, r.listener)
          .bindUnowned(base + 6, r.route)
          .bindUnowned(base + 7, r.method)
          .bindUnowned(base + 8, r.path)
          .bind(base + 9, static_cast<int64_t>(r.status))
          .bindUnowned(base + 10, r.upstream)
          .bind(base + 11, r.latencyUs)
          .bind(base + 12, r.bytesIn)
          .bind(base + 13, r.bytesOut);
    };
    size_t i = 0;
    if (records.size() >= kRowsPerInsert) {
      Statement st = statement(kManyRows);
      for (; i + kRowsPerInsert <= records.size(); i += kRowsPerInsert) {
        for (size_t row = 0; row < kRowsPerInsert; ++row)
          bindRow(st, static_cast<int>(row), records[i + row]);
        st.run();
        st.reset();
      }
    }
    Statement st = statement(kOneRow);
    for (; i < records.size(); ++i) {
      bindRow(st, 0, records[i]);
      st.run();
      st.reset();
    }
  }
  {
    Statement st = statement(
        "INSERT INTO key_usage (key_id, requests, s2xx, s3xx, s4xx, s429, s5xx, last_used_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET "
        "requests = requests + excluded.requests, s2xx = s2xx + excluded.s2xx, "
        "s3xx = s3xx + excluded.s3xx, s4xx = s4xx + excluded.s4xx, s429 = s429 + excluded.s429, "
        "s5xx = s5xx + excluded.s5xx, last_used_ms = max(last_used_ms, excluded.last_used_ms)");
    for (const auto& [keyId, d] : usageByKey(records)) {
      st.bind(1, keyId)
          .bind(2, d.requests)
          .bind(3, d.status2xx)
          .bind(4, d.status3xx)
          .bind(5, d.status4xx)
          .bind(6, d.status429)
          .bind(7, d.status5xx)
          .bind(8, d.lastUsedMs)
          .run();
      st.reset();
    }
  }
  tx.commit();
}

std::vector<LogRow> SqliteStore::queryLogs(const LogQuery& query) {
  std::string sql = std::string("SELECT ") + kLogColumns + " FROM request_log";
  const char* glue = " WHERE ";
  if (!query.keyPrefix.empty()) {
    sql += glue + std::string("key_prefix <> '' AND key_prefix = ?");
    glue = " AND ";
  }
  if (query.status) {
    sql += glue + std::string("status = ?");
    glue = " AND ";
  }
  if (query.keyId) sql += glue + std::string("key_id <> 0 AND key_id = ?");
  sql += " ORDER BY id DESC LIMIT ?";

  Statement st = statement(sql);
  int index = 1;
  if (!query.keyPrefix.empty()) st.bind(index++, query.keyPrefix);
  if (query.status) st.bind(index++, static_cast<int64_t>(*query.status));
  if (query.keyId) st.bind(index++, *query.keyId);
  st.bind(index, static_cast<int64_t>(std::clamp<size_t>(query.limit, 1, 1000)));

  std::vector<LogRow> rows;
  while (st.step()) {
    LogRow row;
    row.id = st.int64(0);
    LogRecord& r = row.record;
    r.timeMs = st.int64(1);
    r.requestId = st.text(2);
    r.keyId = st.int64(3);
    r.keyPrefix = st.text(4);
    r.listener = st.text(5);
    r.route = st.text(6);
    r.method = st.text(7);
    r.path = st.text(8);
    r.status = static_cast<int>(st.int64(9));
    r.upstream = st.text(10);
    r.latencyUs = st.int64(11);
    r.bytesIn = st.int64(12);
    r.bytesOut = st.int64(13);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<int64_t> SqliteStore::recentLatenciesUs(int64_t keyId, size_t limit) {
  if (limit == 0) return {};
  Statement st = statement(
      "SELECT latency_us FROM request_log WHERE key_id <> 0 AND key_id = ? ORDER BY id DESC LIMIT ?");
  st.bind(1, keyId).bind(2,
                         static_cast<int64_t>(std::min<size_t>(limit, std::numeric_limits<int64_t>::max())));
  std::vector<int64_t> out;
  while (st.step()) out.push_back(st.int64(0));
  return out;
}

}  // namespace flowguard::store
