// The Store contract, checked against both backends with the same test cases: SQLite in a
// temp file and PostgreSQL in a server started for this test binary (one fresh database
// per test case).
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <thread>

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_support.h"

using namespace flowguard::store;
using flowguard::test::PostgresServer;
using flowguard::test::TempDir;

namespace {

constexpr const char* kTableCountSql =
    "SELECT count(*) FROM %s WHERE %s IN ('schema_version', 'api_keys', 'key_usage', 'request_log')";

struct SqliteBackend {
  TempDir dir;
  std::string url = "sqlite://" + dir.file("store.db");

  std::unique_ptr<Store> make() const { return makeStore(url); }

  // Reads one integer with a connection of its own, as another process would.
  int64_t scalar(const std::string& sql) const {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(dir.file("store.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      throw std::runtime_error("cannot open the test database");
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    std::string error = sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    if (value < 0) throw std::runtime_error("query failed: " + sql + ": " + error);
    return value;
  }
  int64_t tableCount() const {
    char sql[256];
    std::snprintf(sql, sizeof sql, kTableCountSql, "sqlite_master", "type = 'table' AND name");
    return scalar(sql);
  }
};

PostgresServer& sharedPostgres() {
  static PostgresServer server;
  return server;
}

struct PostgresBackend {
  std::string url = sharedPostgres().createDatabase("store_test_" + std::to_string(++counter));

  std::unique_ptr<Store> make() const { return makeStore(url); }
  int64_t scalar(const std::string& sql) const {
    pqxx::connection conn(url);
    pqxx::nontransaction tx(conn);
    return tx.exec1(sql)[0].as<int64_t>();
  }
  int64_t tableCount() const {
    char sql[256];
    std::snprintf(sql, sizeof sql, kTableCountSql, "information_schema.tables",
                  "table_schema = 'public' AND table_name");
    return scalar(sql);
  }

  static inline int counter = 0;
};

Digest digestOf(int n) {
  Digest d{};
  // Zero and 0xff bytes on purpose: the digest is binary, not a C string.
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<unsigned char>((n * 31 + static_cast<int>(i) * 7) & 0xff);
  d[3] = 0;
  d[4] = 0xff;
  return d;
}

NewKey newKey(int n, std::string name = {}) {
  NewKey k;
  k.digest = digestOf(n);
  k.prefix = "fg_" + std::to_string(1000 + n);
  k.name = name.empty() ? "key " + std::to_string(n) : name;
  k.plan = n % 2 ? "gold" : "free";
  k.limits = n % 3 ? "" : R"({"rate":"10/s","burst":20})";
  k.createdAtMs = 1'700'000'000'000 + n;
  return k;
}

void checkSameKey(const StoredKey& a, const StoredKey& b) {
  CHECK(a.id == b.id);
  CHECK(a.digest == b.digest);
  CHECK(a.prefix == b.prefix);
  CHECK(a.name == b.name);
  CHECK(a.plan == b.plan);
  CHECK(a.limits == b.limits);
  CHECK(a.createdAtMs == b.createdAtMs);
  CHECK(a.revokedAtMs == b.revokedAtMs);
  CHECK(a.version == b.version);
}

void checkSameRecord(const LogRecord& a, const LogRecord& b) {
  CHECK(a.timeMs == b.timeMs);
  CHECK(a.requestId == b.requestId);
  CHECK(a.keyId == b.keyId);
  CHECK(a.keyPrefix == b.keyPrefix);
  CHECK(a.listener == b.listener);
  CHECK(a.route == b.route);
  CHECK(a.method == b.method);
  CHECK(a.path == b.path);
  CHECK(a.status == b.status);
  CHECK(a.upstream == b.upstream);
  CHECK(a.latencyUs == b.latencyUs);
  CHECK(a.bytesIn == b.bytesIn);
  CHECK(a.bytesOut == b.bytesOut);
}

LogQuery logQuery(size_t limit, std::string keyPrefix = {}, std::optional<int> status = {},
                  std::optional<int64_t> keyId = {}) {
  LogQuery q;
  q.limit = limit;
  q.keyPrefix = std::move(keyPrefix);
  q.status = status;
  q.keyId = keyId;
  return q;
}

template <typename Call>
bool throwsUnavailable(Call call) {
  try {
    call();
  } catch (const StoreUnavailable&) {
    return true;
  } catch (const std::exception& e) {
    MESSAGE("expected StoreUnavailable, got: " << std::string(e.what()));
    return false;
  }
  MESSAGE("expected StoreUnavailable, nothing was thrown");
  return false;
}

// Throws StoreError but not StoreUnavailable.
template <typename Call>
bool throwsPlainStoreError(Call call) {
  try {
    call();
  } catch (const StoreUnavailable& e) {
    MESSAGE("expected StoreError, got StoreUnavailable: " << std::string(e.what()));
    return false;
  } catch (const StoreError&) {
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("makeStore parses storage urls") {
  auto abs = makeStore("sqlite:///abs/dir/x.db");
  REQUIRE(dynamic_cast<SqliteStore*>(abs.get()) != nullptr);
  CHECK(abs->kind() == "sqlite");
  CHECK(dynamic_cast<SqliteStore&>(*abs).path() == "/abs/dir/x.db");
  CHECK(dynamic_cast<SqliteStore&>(*makeStore("sqlite://./x.db")).path() == "./x.db");
  CHECK(makeStore("postgres://u@h/db")->kind() == "postgres");
  CHECK(makeStore("postgresql://u@h/db")->kind() == "postgres");
  CHECK(throwsPlainStoreError([] { makeStore("mysql://u@h/db"); }));
  CHECK(throwsPlainStoreError([] { makeStore("sqlite://"); }));
  CHECK(throwsPlainStoreError([] { makeStore("/just/a/path.db"); }));

  CHECK(postgresConnectionUrl("postgres://u@h:5/db", "") == "postgres://u@h:5/db?connect_timeout=2");
  CHECK(postgresConnectionUrl("postgres://u:old@h:5/db", "p@ss w/rd&x") ==
        "postgres://u@h:5/db?password=p%40ss%20w%2Frd%26x&connect_timeout=2");
  CHECK(postgresConnectionUrl("postgresql://u@h/db?sslmode=disable&password=old&connect_timeout=7", "new") ==
        "postgresql://u@h/db?sslmode=disable&connect_timeout=7&password=new");
  CHECK(postgresConnectionUrl("postgres://u:keep@h/db?connect_timeout=1", "") ==
        "postgres://u:keep@h/db?connect_timeout=1");
}

TEST_CASE("sqlite uses WAL so several gateways can share the file") {
  SqliteBackend backend;
  auto store = backend.make();
  store->open();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(backend.dir.file("store.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))) == "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_CASE_TEMPLATE("open creates the schema once", B, SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  CHECK(throwsUnavailable([&] { store->listKeys(); }));  // not opened yet
  store->open();
  CHECK(backend.tableCount() == 4);
  CHECK(backend.scalar("SELECT count(*) FROM schema_version") == 1);
  CHECK(backend.scalar("SELECT version FROM schema_version") == 3);  // every migration applied

  auto key = store->insertKey(newKey(1));
  store->open();  // again on the same connection
  auto second = backend.make();
  second->open();  // and from another "gateway"
  CHECK(backend.scalar("SELECT count(*) FROM schema_version") == 1);
  CHECK(backend.scalar("SELECT version FROM schema_version") == 3);  // every migration applied
  REQUIRE(second->findKey(key.id));
  CHECK(second->listKeys().size() == 1);
}

TEST_CASE_TEMPLATE("gateways starting together migrate the schema once", B, SqliteBackend, PostgresBackend) {
  B backend;
  constexpr int kGateways = 4;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kGateways; ++i) stores.push_back(backend.make());
  std::vector<std::string> errors(kGateways);
  std::vector<std::thread> threads;
  for (int i = 0; i < kGateways; ++i) {
    // Each Store is used by one thread only, as in the gateway.
    threads.emplace_back([&, i] {
      try {
        stores[i]->open();
        stores[i]->insertKey(newKey(100 + i));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) CHECK(e == "");
  CHECK(backend.scalar("SELECT count(*) FROM schema_version") == 1);
  CHECK(backend.scalar("SELECT version FROM schema_version") == 3);  // every migration applied
  CHECK(stores[0]->listKeys().size() == kGateways);
}

TEST_CASE_TEMPLATE("keys are inserted and found by id and digest", B, SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  CHECK(store->listKeys().empty());

  StoredKey a = store->insertKey(newKey(1));
  StoredKey b = store->insertKey(newKey(3));
  CHECK(a.id > 0);
  CHECK(b.id > a.id);
  CHECK(a.version > 0);
  CHECK(a.name == "key 1");
  CHECK(b.limits == R"({"rate":"10/s","burst":20})");
  CHECK_FALSE(a.revokedAtMs);

  auto found = store->findKey(a.id);
  REQUIRE(found);
  checkSameKey(found->key, a);
  CHECK(found->usage.requests == 0);
  CHECK(found->usage.status4xx == 0);
  CHECK_FALSE(found->usage.lastUsedMs);

  auto byDigest = store->findKeyByDigest(b.digest);
  REQUIRE(byDigest);
  checkSameKey(byDigest->key, b);

  CHECK_FALSE(store->findKey(b.id + 100));
  CHECK_FALSE(store->findKeyByDigest(digestOf(2)));

  auto all = store->listKeys();
  REQUIRE(all.size() == 2);
  checkSameKey(all[0].key, a);
  checkSameKey(all[1].key, b);
}

TEST_CASE_TEMPLATE("a duplicate digest is a StoreError", B, SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  StoredKey a = store->insertKey(newKey(1));
  CHECK(throwsPlainStoreError([&] { store->insertKey(newKey(1, "other name")); }));
  // The store stays usable and nothing was half-written.
  StoredKey b = store->insertKey(newKey(2));
  CHECK(b.version > a.version);
  auto all = store->listKeys();
  REQUIRE(all.size() == 2);
  CHECK(all[0].key.name == "key 1");
}

TEST_CASE_TEMPLATE("uniqueName: an active key's name is refused, a revoked one's is free", B, SqliteBackend,
                   PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  NewKey first = newKey(1, "alice");
  first.uniqueName = true;
  StoredKey alice = store->insertKey(first);
  NewKey second = newKey(2, "alice");
  CHECK(store->insertKey(second).id > alice.id);  // without the flag: allowed, as before
  NewKey third = newKey(3, "alice");
  third.uniqueName = true;
  bool taken = false;
  try {
    store->insertKey(third);
  } catch (const NameTaken& e) {
    taken = std::string(e.what()).find("'alice'") != std::string::npos;
  }
  CHECK(taken);
  CHECK(store->listKeys().size() == 2);  // nothing half-written
  NewKey unnamed = newKey(4);
  unnamed.name.clear();
  unnamed.uniqueName = true;
  store->insertKey(unnamed);
  NewKey unnamedToo = newKey(5);
  unnamedToo.name.clear();
  unnamedToo.uniqueName = true;
  store->insertKey(unnamedToo);  // "" is no name: never a clash
  // Once every "alice" is revoked, the name is free again.
  store->revokeKey(alice.id, 1);
  store->revokeKey(alice.id + 1, 1);
  CHECK(store->insertKey(third).name == "alice");
}

TEST_CASE_TEMPLATE("syncConfiguredKeys: a row per yaml key, updated, revoked when gone, stable ids", B,
                   SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  StoredKey registered = store->insertKey(newKey(1, "registered"));
  NewKey demo = newKey(10, "demo");
  NewKey ops = newKey(11, "ops");
  std::vector<StoredKey> rows = store->syncConfiguredKeys({demo, ops}, 1000);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].digest == demo.digest);
  CHECK(rows[0].configured);
  CHECK(rows[0].name == "demo");
  CHECK(rows[0].limits.empty());
  CHECK_FALSE(rows[0].revokedAtMs);
  CHECK(rows[1].name == "ops");
  const int64_t afterFirst = std::max(rows[0].version, rows[1].version);
  CHECK(store->findKey(registered.id)->key.configured == false);

  // The same file again (a restart): the same rows, no version moves.
  std::vector<StoredKey> again = store->syncConfiguredKeys({demo, ops}, 2000);
  REQUIRE(again.size() == 2);
  CHECK(again[0].id == rows[0].id);
  CHECK(again[1].id == rows[1].id);
  CHECK(store->keysChangedSince(afterFirst).empty());

  // Usage is counted on the row, as for any key.
  LogRecord r;
  r.timeMs = 5;
  r.keyId = rows[0].id;
  r.keyPrefix = demo.prefix;
  r.status = 200;
  std::vector<LogRecord> batch{r};
  store->appendLogs(batch);

  // ops leaves the file, demo changes plan: ops is revoked, demo updated, both re-versioned.
  demo.plan = "pro";
  std::vector<StoredKey> third = store->syncConfiguredKeys({demo}, 3000);
  REQUIRE(third.size() == 1);
  CHECK(third[0].id == rows[0].id);
  CHECK(third[0].plan == "pro");
  std::vector<StoredKey> changed = store->keysChangedSince(afterFirst);
  REQUIRE(changed.size() == 2);
  auto opsRow = store->findKey(rows[1].id);
  REQUIRE(opsRow);
  CHECK(opsRow->key.revokedAtMs == 3000);
  CHECK(opsRow->key.configured);
  auto demoRow = store->findKey(rows[0].id);
  REQUIRE(demoRow);
  CHECK(demoRow->usage.requests == 1);
  CHECK_FALSE(store->findKey(registered.id)->key.revokedAtMs);  // a registered key is never touched

  // ops back in the file: the same row, active again, its id kept.
  std::vector<StoredKey> fourth = store->syncConfiguredKeys({demo, ops}, 4000);
  REQUIRE(fourth.size() == 2);
  CHECK(fourth[1].id == rows[1].id);
  CHECK_FALSE(fourth[1].revokedAtMs);
  CHECK(store->countKeys() == std::pair<int64_t, int64_t>{3, 3});
}

TEST_CASE_TEMPLATE("versions grow and keysChangedSince returns exactly the later changes", B, SqliteBackend,
                   PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  CHECK(store->keysChangedSince(0).empty());
  StoredKey a = store->insertKey(newKey(1));
  StoredKey b = store->insertKey(newKey(2));
  StoredKey c = store->insertKey(newKey(3));
  CHECK(a.version < b.version);
  CHECK(b.version < c.version);

  auto since0 = store->keysChangedSince(0);
  REQUIRE(since0.size() == 3);
  checkSameKey(since0[0], a);
  checkSameKey(since0[2], c);
  auto sinceA = store->keysChangedSince(a.version);
  REQUIRE(sinceA.size() == 2);
  CHECK(sinceA[0].id == b.id);
  CHECK(sinceA[1].id == c.id);
  CHECK(store->keysChangedSince(c.version).empty());

  CHECK(store->revokeKey(a.id, 1'800'000'000'000));
  auto afterRevoke = store->keysChangedSince(c.version);
  REQUIRE(afterRevoke.size() == 1);
  CHECK(afterRevoke[0].id == a.id);
  CHECK(afterRevoke[0].revokedAtMs == 1'800'000'000'000);
  CHECK(afterRevoke[0].version > c.version);

  CHECK_FALSE(store->revokeKey(a.id, 1'900'000'000'000));         // already revoked
  CHECK_FALSE(store->revokeKey(c.id + 1000, 1'900'000'000'000));  // no such key
  auto latest = afterRevoke[0].version;
  CHECK(store->keysChangedSince(latest).empty());  // a failed revoke changes nothing
  CHECK(store->findKey(a.id)->key.revokedAtMs == 1'800'000'000'000);

  // Revoked keys are still listed, in id order, with their new version.
  auto all = store->listKeys();
  REQUIRE(all.size() == 3);
  CHECK(all[0].key.id == a.id);
  CHECK(all[0].key.version == latest);
}

TEST_CASE_TEMPLATE("setKeyPlan moves an active key to a plan, drops its own limits, and bumps its version", B,
                   SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  NewKey withLimits = newKey(1);
  withLimits.limits = R"({"algorithm":"token_bucket","rate":"5/s","burst":5})";
  StoredKey a = store->insertKey(withLimits);
  StoredKey b = store->insertKey(newKey(2));
  CHECK(store->setKeyPlan(a.id, "pro"));
  auto changed = store->keysChangedSince(b.version);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].id == a.id);
  CHECK(changed[0].plan == "pro");
  CHECK(changed[0].limits.empty());  // the plan's limit applies now
  CHECK(store->findKey(b.id)->key.plan == newKey(2).plan);
  CHECK_FALSE(store->setKeyPlan(a.id + 1000, "pro"));  // no such key
  CHECK(store->revokeKey(b.id, 1'800'000'000'000));
  CHECK_FALSE(store->setKeyPlan(b.id, "pro"));  // revoked
}

TEST_CASE_TEMPLATE("two gateways on one database see each other's keys and versions", B, SqliteBackend,
                   PostgresBackend) {
  B backend;
  auto first = backend.make();
  auto second = backend.make();
  first->open();
  second->open();

  StoredKey a = first->insertKey(newKey(1));
  auto seen = second->findKeyByDigest(a.digest);
  REQUIRE(seen);
  checkSameKey(seen->key, a);

  StoredKey b = second->insertKey(newKey(2));
  CHECK(b.version > a.version);
  auto changed = first->keysChangedSince(a.version);
  REQUIRE(changed.size() == 1);
  checkSameKey(changed[0], b);

  CHECK(second->revokeKey(a.id, 5));
  CHECK_FALSE(first->revokeKey(a.id, 6));
  changed = first->keysChangedSince(b.version);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].id == a.id);
  CHECK(changed[0].revokedAtMs == 5);

  // Interleaved inserts from both keep versions unique and increasing.
  std::set<int64_t> versions = {a.version, b.version, changed[0].version};
  int64_t last = changed[0].version;
  for (int i = 10; i < 20; ++i) {
    StoredKey k = (i % 2 ? first : second)->insertKey(newKey(i));
    CHECK(k.version > last);
    last = k.version;
    versions.insert(k.version);
  }
  CHECK(versions.size() == 13);
  CHECK(first->keysChangedSince(0).size() == 12);
}

namespace {

struct Expected {
  int64_t requests = 0, s2xx = 0, s3xx = 0, s4xx = 0, s429 = 0, s5xx = 0;
  int64_t lastUsed = 0;
};

void checkUsage(const KeyUsage& u, const Expected& e) {
  CHECK(u.requests == e.requests);
  CHECK(u.status2xx == e.s2xx);
  CHECK(u.status3xx == e.s3xx);
  CHECK(u.status4xx == e.s4xx);
  CHECK(u.status429 == e.s429);
  CHECK(u.status5xx == e.s5xx);
  CHECK(u.lastUsedMs == e.lastUsed);
}

}  // namespace

TEST_CASE_TEMPLATE("appendLogs keeps the log and the usage counts", B, SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  StoredKey a = store->insertKey(newKey(1));
  StoredKey b = store->insertKey(newKey(2));
  StoredKey idle = store->insertKey(newKey(3));

  const int statuses[] = {200, 201, 302, 404, 429, 500, 503, 101};
  std::vector<LogRecord> records;
  std::map<int64_t, Expected> expected;
  for (int i = 0; i < 3000; ++i) {
    LogRecord r;
    r.timeMs = 1'700'000'000'000 + i;
    r.requestId = "req-" + std::to_string(i);
    const StoredKey* key = i % 3 == 0 ? &a : i % 3 == 1 ? &b : nullptr;
    r.keyId = key ? key->id : 0;
    r.keyPrefix = key ? key->prefix : "";
    r.listener = "public";
    r.route = i % 2 ? "api" : "admin";
    r.method = i % 2 ? "GET" : "POST";
    r.path = "/p/" + std::to_string(i);
    r.status = statuses[i % 8];
    r.upstream = r.status == 429 ? "" : "127.0.0.1:" + std::to_string(9000 + i % 4);
    r.latencyUs = 1000 + i;
    r.bytesIn = i * 3;
    r.bytesOut = i * 7;
    records.push_back(r);
    if (key) {
      Expected& e = expected[key->id];
      ++e.requests;
      e.s2xx += r.status / 100 == 2;
      e.s3xx += r.status / 100 == 3;
      e.s4xx += r.status / 100 == 4;
      e.s429 += r.status == 429;
      e.s5xx += r.status / 100 == 5;
      e.lastUsed = std::max(e.lastUsed, r.timeMs);
    }
  }
  for (size_t start = 0; start < records.size(); start += 1000) {
    store->appendLogs(std::span<const LogRecord>(records).subspan(start, 1000));
  }
  // A late record with an older time: counted, but last_used stays the newest time.
  LogRecord late = records[0];
  late.requestId = "late";
  late.timeMs = 5;
  late.status = 429;
  store->appendLogs(std::span<const LogRecord>(&late, 1));
  records.push_back(late);
  Expected& ea = expected[a.id];
  ++ea.requests;
  ++ea.s4xx;
  ++ea.s429;
  store->appendLogs({});  // an empty batch is fine

  CHECK(backend.scalar("SELECT count(*) FROM request_log") == 3001);

  SUBCASE("usage") {
    auto la = store->findKey(a.id);
    REQUIRE(la);
    checkUsage(la->usage, expected[a.id]);
    // a's 429s: i % 3 == 0 and i % 8 == 4, i.e. i % 24 == 12: 125 of 3000, plus the late one.
    CHECK(la->usage.status429 == 126);
    checkUsage(store->findKeyByDigest(b.digest)->usage, expected[b.id]);
    auto all = store->listKeys();
    REQUIRE(all.size() == 3);
    checkUsage(all[0].usage, expected[a.id]);
    checkUsage(all[1].usage, expected[b.id]);
    CHECK(all[2].key.id == idle.id);
    CHECK(all[2].usage.requests == 0);
    CHECK_FALSE(all[2].usage.lastUsedMs);
  }

  SUBCASE("newest first, limit clamped to [1, 1000]") {
    auto rows = store->queryLogs(logQuery(10));
    REQUIRE(rows.size() == 10);
    checkSameRecord(rows[0].record, late);
    checkSameRecord(rows[1].record, records[2999]);
    checkSameRecord(rows[9].record, records[2991]);
    for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].id < rows[i - 1].id);
    CHECK(store->queryLogs(logQuery(0)).size() == 1);
    auto many = store->queryLogs(logQuery(5000));
    REQUIRE(many.size() == 1000);
    CHECK(many.back().record.requestId == "req-2001");
  }

  SUBCASE("filters combine with AND") {
    auto byPrefix = store->queryLogs(logQuery(1000, b.prefix));
    CHECK(byPrefix.size() == 1000);
    for (const auto& row : byPrefix) CHECK(row.record.keyPrefix == b.prefix);
    CHECK(byPrefix.front().record.requestId == "req-2998");

    auto byStatus = store->queryLogs(logQuery(1000, {}, 429));
    CHECK(byStatus.size() == 376);  // every 8th of 3000, plus the late one
    for (const auto& row : byStatus) CHECK(row.record.status == 429);

    auto byKey = store->queryLogs(logQuery(1000, {}, {}, a.id));
    CHECK(byKey.size() == 1000);
    for (const auto& row : byKey) CHECK(row.record.keyId == a.id);

    auto both = store->queryLogs(logQuery(1000, a.prefix, 503));
    size_t want = 0;
    for (const LogRecord& r : records) want += r.keyId == a.id && r.status == 503;
    CHECK(want > 0);
    CHECK(both.size() == want);
    for (size_t i = 0; i < both.size(); ++i) {
      CHECK(both[i].record.keyId == a.id);
      CHECK(both[i].record.status == 503);
      if (i > 0) CHECK(both[i].id < both[i - 1].id);
    }

    auto all3 = store->queryLogs(logQuery(3, a.prefix, 429, a.id));
    REQUIRE(all3.size() == 3);
    CHECK(all3[0].record.requestId == "late");
    CHECK(store->queryLogs(logQuery(10, a.prefix, {}, b.id)).empty());
    CHECK(store->queryLogs(logQuery(10, {}, 418)).empty());
  }

  SUBCASE("recentLatenciesUs returns the newest N of a key") {
    auto latencies = store->recentLatenciesUs(b.id, 5);
    std::sort(latencies.begin(), latencies.end());
    // b's newest five records are 2998, 2995, 2992, 2989, 2986.
    CHECK(latencies == std::vector<int64_t>{1000 + 2986, 1000 + 2989, 1000 + 2992, 1000 + 2995, 1000 + 2998});
    CHECK(store->recentLatenciesUs(b.id, 0).empty());
    CHECK(store->recentLatenciesUs(idle.id, 10).empty());
    CHECK(store->recentLatenciesUs(a.id, 100000).size() == 1001);
  }
}

TEST_CASE_TEMPLATE("hostile strings are stored verbatim and run no SQL", B, SqliteBackend, PostgresBackend) {
  B backend;
  auto store = backend.make();
  store->open();
  NewKey hostile = newKey(7, "x'); DROP TABLE api_keys; --");
  hostile.prefix = "fg_'\"\\";
  hostile.plan = "gold' OR '1'='1";
  hostile.limits = R"({"rate":"10'/s","note":"\"quoted\" \\ back"})";
  StoredKey key = store->insertKey(hostile);

  LogRecord r;
  r.timeMs = 42;
  r.requestId = "id'; DELETE FROM request_log; --";
  r.keyId = key.id;
  r.keyPrefix = hostile.prefix;
  r.listener = "pub\"lic";
  r.route = "r'1";
  r.method = "GET'; --";
  // Quotes, COPY's own specials (tab, newline, backslash, \N) and multi-byte UTF-8.
  r.path = "/a'b\"c;--/\\N/tab\there/nl\nx/\\\\/ünïcødé/日本語/🚀?q='1' OR 1=1";
  r.status = 200;
  r.upstream = "h'ost:1";
  r.latencyUs = 1;
  store->appendLogs(std::span<const LogRecord>(&r, 1));

  CHECK(backend.tableCount() == 4);
  auto found = store->findKeyByDigest(hostile.digest);
  REQUIRE(found);
  CHECK(found->key.name == hostile.name);
  CHECK(found->key.prefix == hostile.prefix);
  CHECK(found->key.plan == hostile.plan);
  CHECK(found->key.limits == hostile.limits);
  CHECK(found->usage.requests == 1);

  auto rows = store->queryLogs(logQuery(10, hostile.prefix));
  REQUIRE(rows.size() == 1);
  checkSameRecord(rows[0].record, r);
  CHECK(store->queryLogs(logQuery(10, "fg_' OR '1'='1")).empty());
  CHECK(store->listKeys().size() == 1);
}

TEST_CASE("postgres: an outage is StoreUnavailable, and open() reconnects" * doctest::timeout(240)) {
  PostgresServer server;
  std::string url = server.createDatabase("outage");
  // The URL's password is replaced by the given one (trust auth accepts any): checks that
  // libpq takes the rewritten URL.
  std::string withPassword =
      "postgres://postgres:wrong@127.0.0.1:" + std::to_string(server.port()) + "/outage";
  auto store = makeStore(withPassword, "n3w p@ss/&?");
  store->open();
  StoredKey key = store->insertKey(newKey(1));
  std::vector<LogRecord> logs(10);
  for (size_t i = 0; i < logs.size(); ++i) {
    logs[i].keyId = key.id;
    logs[i].keyPrefix = key.prefix;
    logs[i].status = 200;
    logs[i].timeMs = static_cast<int64_t>(i);
    logs[i].requestId = "before-" + std::to_string(i);
  }
  store->appendLogs(logs);

  server.stop();
  auto started = std::chrono::steady_clock::now();
  CHECK(throwsUnavailable([&] { store->findKey(key.id); }));
  CHECK(throwsUnavailable([&] { store->appendLogs(logs); }));  // no connection until open()
  CHECK(throwsUnavailable([&] { store->open(); }));
  CHECK(throwsUnavailable([&] { store->listKeys(); }));
  CHECK(throwsUnavailable([&] { store->open(); }));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));

  server.start();
  store->open();
  auto found = store->findKey(key.id);
  REQUIRE(found);
  checkSameKey(found->key, key);
  CHECK(found->usage.requests == 10);
  CHECK(store->queryLogs(logQuery(100)).size() == 10);
  store->appendLogs(logs);
  CHECK(store->findKey(key.id)->usage.requests == 20);
  StoredKey next = store->insertKey(newKey(2));
  CHECK(next.version > key.version);

  // A restart between two calls: the connection is stale, open() replaces it at once.
  server.stop();
  server.start();
  store->open();
  CHECK(store->listKeys().size() == 2);
}

TEST_CASE("appendLogs throughput, batches of 1000 (reported, not asserted)") {
  auto measure = [](Store& store) {
    store.open();
    std::vector<LogRecord> batch(1000);
    for (size_t i = 0; i < batch.size(); ++i) {
      LogRecord& r = batch[i];
      r.timeMs = 1'700'000'000'000 + static_cast<int64_t>(i);
      r.requestId = "0123456789abcdef" + std::to_string(i);
      r.keyId = static_cast<int64_t>(i % 50) + 1;
      r.keyPrefix = "fg_live_" + std::to_string(i % 50);
      r.listener = "public";
      r.route = "api";
      r.method = "GET";
      r.path = "/api/v1/items/" + std::to_string(i);
      r.status = i % 10 ? 200 : 429;
      r.upstream = "127.0.0.1:9001";
      r.latencyUs = 1500;
      r.bytesOut = 512;
    }
    const int batches = 20;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < batches; ++i) store.appendLogs(batch);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return batches * 1000 / seconds;
  };
  SqliteBackend sqlite;
  PostgresBackend postgres;
  double sqliteRate = measure(*sqlite.make());
  double postgresRate = measure(*postgres.make());
  MESSAGE("appendLogs rows/s: sqlite " << static_cast<int64_t>(sqliteRate) << ", postgres "
                                       << static_cast<int64_t>(postgresRate));
  CHECK(sqlite.scalar("SELECT count(*) FROM request_log") == 20000);
  CHECK(postgres.scalar("SELECT count(*) FROM request_log") == 20000);
}
