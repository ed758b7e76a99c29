#include "store/postgres_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <iterator>
#include <limits>
#include <pqxx/pqxx>
#include <string_view>
#include <tuple>

#include "store/usage_delta.h"

namespace flowguard::store {

namespace {

// pg_advisory_xact_lock ids: "FGschema" and "FGkeyver" in ASCII.
constexpr int64_t kMigrationLock = 0x4647736368656d61;
constexpr int64_t kKeyVersionLock = 0x46476b6579766572;

// Step i brings the schema from version i to i + 1. A new version appends a step; a
// released step never changes.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE api_keys (
  id bigserial PRIMARY KEY,
  digest bytea NOT NULL UNIQUE,
  prefix text NOT NULL,
  name text NOT NULL,
  plan text NOT NULL,
  limits text NOT NULL,
  created_at_ms bigint NOT NULL,
  revoked_at_ms bigint,
  version bigint NOT NULL
);
CREATE INDEX api_keys_version ON api_keys (version);
CREATE SEQUENCE key_version_seq;
CREATE TABLE key_usage (
  key_id bigint PRIMARY KEY,
  requests bigint NOT NULL,
  s2xx bigint NOT NULL,
  s3xx bigint NOT NULL,
  s4xx bigint NOT NULL,
  s429 bigint NOT NULL,
  s5xx bigint NOT NULL,
  last_used_ms bigint NOT NULL
);
CREATE TABLE request_log (
  id bigserial PRIMARY KEY,
  time_ms bigint NOT NULL,
  request_id text NOT NULL,
  key_id bigint NOT NULL,
  key_prefix text NOT NULL,
  listener text NOT NULL,
  route text NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  status integer NOT NULL,
  upstream text NOT NULL,
  latency_us bigint NOT NULL,
  bytes_in bigint NOT NULL,
  bytes_out bigint NOT NULL
);
CREATE INDEX request_log_key ON request_log (key_id, id);
CREATE INDEX request_log_prefix ON request_log (key_prefix, id);
CREATE INDEX request_log_status ON request_log (status, id);
)sql",
    // 2: the request-log indexes cover only requests that carried a key (the only ones
    // looked up by key), so anonymous traffic costs no index update; status lookups scan
    // newest-first. Queries repeat the predicates literally so the planner uses them.
    R"sql(
DROP INDEX request_log_key;
DROP INDEX request_log_prefix;
DROP INDEX request_log_status;
CREATE INDEX request_log_key ON request_log (key_id, id) WHERE key_id <> 0;
CREATE INDEX request_log_prefix ON request_log (key_prefix, id) WHERE key_prefix <> '';
)sql",
    // 3: keys written in flowguard.yaml get a row too (usage, listings), marked so.
    R"sql(
ALTER TABLE api_keys ADD COLUMN configured boolean NOT NULL DEFAULT false;
)sql",
};
constexpr int64_t kSchemaVersion = static_cast<int64_t>(std::size(kMigrations));

constexpr const char* kKeyColumns =
    "k.id, k.digest, k.prefix, k.name, k.plan, k.limits, k.created_at_ms, k.revoked_at_ms, k.version, "
    "k.configured";
constexpr int kKeyColumnCount = 10;
constexpr const char* kUsageColumns = "u.requests, u.s2xx, u.s3xx, u.s4xx, u.s429, u.s5xx, u.last_used_ms";
constexpr const char* kLogColumns =
    "id, time_ms, request_id, key_id, key_prefix, listener, route, method, path, status, upstream, "
    "latency_us, bytes_in, bytes_out";

// SQLSTATEs that mean the session is gone: class 08 (connection exception) and the server
// shutting down or starting up (57P01..57P03).
bool meansConnectionLost(const std::string& sqlstate) {
  return sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
}

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string text(const pqxx::field& f) {
  return std::string(f.c_str(), f.size());
}

StoredKey readKey(const pqxx::row& row, int first) {
  StoredKey k;
  k.id = row[first].as<int64_t>();
  pqxx::binarystring digest(row[first + 1]);
  if (digest.size() != k.digest.size()) throw StoreError("postgres: api_keys.digest is not 32 bytes");
  std::memcpy(k.digest.data(), digest.data(), k.digest.size());
  k.prefix = text(row[first + 2]);
  k.name = text(row[first + 3]);
  k.plan = text(row[first + 4]);
  k.limits = text(row[first + 5]);
  k.createdAtMs = row[first + 6].as<int64_t>();
  if (!row[first + 7].is_null()) k.revokedAtMs = row[first + 7].as<int64_t>();
  k.version = row[first + 8].as<int64_t>();
  k.configured = row[first + 9].as<bool>();
  return k;
}

KeyUsage readUsage(const pqxx::row& row, int first) {
  KeyUsage u;
  if (row[first].is_null()) return u;
  u.requests = row[first].as<int64_t>();
  u.status2xx = row[first + 1].as<int64_t>();
  u.status3xx = row[first + 2].as<int64_t>();
  u.status4xx = row[first + 3].as<int64_t>();
  u.status429 = row[first + 4].as<int64_t>();
  u.status5xx = row[first + 5].as<int64_t>();
  u.lastUsedMs = row[first + 6].as<int64_t>();
  return u;
}

pqxx::binarystring digestParam(const Digest& digest) {
  return pqxx::binarystring(digest.data(), digest.size());
}

}  // namespace

std::string postgresConnectionUrl(const std::string& url, const std::string& password) {
  size_t schemeEnd = url.find("://");
  if (schemeEnd == std::string::npos) throw StoreError("postgres storage url has no scheme");
  schemeEnd += 3;
  std::string rest = url.substr(schemeEnd);
  size_t queryStart = rest.find('?');
  std::string base = rest.substr(0, queryStart);
  std::vector<std::string> params;
  if (queryStart != std::string::npos) {
    std::string_view query = std::string_view(rest).substr(queryStart + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view param = query.substr(0, amp);
      if (!param.empty()) params.emplace_back(param);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  auto hasParam = [&](std::string_view name) {
    return std::any_of(params.begin(), params.end(),
                       [&](const std::string& p) { return p.rfind(name, 0) == 0; });
  };
  if (!password.empty()) {
    // Drop the URL's own password so that libpq sees exactly one.
    size_t slash = base.find('/');
    std::string authority = base.substr(0, slash);
    size_t at = authority.rfind('@');
    if (at != std::string::npos) {
      std::string user = authority.substr(0, at);
      user = user.substr(0, user.find(':'));
      authority = user + authority.substr(at);
    }
    base = authority + (slash == std::string::npos ? std::string() : base.substr(slash));
    std::erase_if(params, [](const std::string& p) { return p.rfind("password=", 0) == 0; });
    params.push_back("password=" + percentEncode(password));
  }
  if (!hasParam("connect_timeout=")) params.emplace_back("connect_timeout=2");
  std::string out = url.substr(0, schemeEnd) + base;
  for (size_t i = 0; i < params.size(); ++i) out += (i == 0 ? "?" : "&") + params[i];
  return out;
}

PostgresStore::PostgresStore(std::string url) : url_(std::move(url)) {}

PostgresStore::~PostgresStore() = default;

template <typename Body>
auto PostgresStore::guarded(const char* what, Body&& body) {
  if (!conn_) throw StoreUnavailable(fmt::format("postgres: {}: not connected", what));
  auto lost = [&](const char* detail) {
    std::string message = fmt::format("postgres: {}: connection lost: {}", what, detail);
    conn_.reset();
    return StoreUnavailable(message);
  };
  try {
    return body(*conn_);
  } catch (const StoreError&) {
    throw;
  } catch (const pqxx::broken_connection& e) {
    throw lost(e.what());
  } catch (const pqxx::in_doubt_error& e) {
    throw lost(e.what());
  } catch (const pqxx::unique_violation& e) {
    throw StoreError(fmt::format("postgres: {}: already exists: {}", what, e.what()));
  } catch (const pqxx::sql_error& e) {
    if (meansConnectionLost(e.sqlstate()) || !conn_->is_open()) throw lost(e.what());
    throw StoreError(fmt::format("postgres: {}: {}", what, e.what()));
  } catch (const std::exception& e) {
    if (!conn_->is_open()) throw lost(e.what());
    throw StoreError(fmt::format("postgres: {}: {}", what, e.what()));
  }
}

void PostgresStore::open() {
  if (conn_ && conn_->is_open()) {
    try {
      guarded("open", [this](pqxx::connection&) { migrate(); });
      return;
    } catch (const StoreUnavailable&) {
      // The server went away since the last call: connect afresh below.
    }
  }
  connect();
  guarded("open", [this](pqxx::connection&) { migrate(); });
}

void PostgresStore::connect() {
  conn_.reset();
  try {
    conn_ = std::make_unique<pqxx::connection>(url_);
  } catch (const std::exception& e) {
    throw StoreUnavailable(fmt::format("postgres: cannot connect: {}", e.what()));
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // A lost connection stays lost until open(): the caller decides when to retry.
  conn_->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  conn_->prepare("insert_key",
                 std::string("INSERT INTO api_keys (digest, prefix, name, plan, limits, created_at_ms, "
                             "version) VALUES ($1, $2, $3, $4, $5, $6, nextval('key_version_seq')) "
                             "RETURNING id, version"));
  conn_->prepare("revoke_key",
                 "UPDATE api_keys SET revoked_at_ms = $2, version = nextval('key_version_seq') "
                 "WHERE id = $1 AND revoked_at_ms IS NULL");
  conn_->prepare("set_key_plan",
                 "UPDATE api_keys SET plan = $2, limits = '', version = nextval('key_version_seq') "
                 "WHERE id = $1 AND revoked_at_ms IS NULL");
  conn_->prepare("active_key_named", "SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at_ms IS NULL");
  conn_->prepare("key_version_lock", "SELECT pg_advisory_xact_lock(" + std::to_string(kKeyVersionLock) + ")");
  conn_->prepare("keys_since", std::string("SELECT ") + kKeyColumns +
                                   " FROM api_keys k WHERE k.version > $1 ORDER BY k.version");
  std::string listing = std::string("SELECT ") + kKeyColumns + ", " + kUsageColumns +
                        " FROM api_keys k LEFT JOIN key_usage u ON u.key_id = k.id";
  conn_->prepare("list_keys", listing + " WHERE k.id > $1 ORDER BY k.id LIMIT $2");
  conn_->prepare("count_keys", "SELECT count(*), count(*) - count(revoked_at_ms) FROM api_keys");
  conn_->prepare("find_key", listing + " WHERE k.id = $1");
  conn_->prepare("find_key_digest", listing + " WHERE k.digest = $1");
  // One statement per batch: the per-key deltas travel as parallel arrays.
  conn_->prepare("add_usage",
                 "INSERT INTO key_usage (key_id, requests, s2xx, s3xx, s4xx, s429, s5xx, last_used_ms) "
                 "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], "
                 "$6::bigint[], $7::bigint[], $8::bigint[]) "
                 "ON CONFLICT (key_id) DO UPDATE SET requests = key_usage.requests + EXCLUDED.requests, "
                 "s2xx = key_usage.s2xx + EXCLUDED.s2xx, s3xx = key_usage.s3xx + EXCLUDED.s3xx, "
                 "s4xx = key_usage.s4xx + EXCLUDED.s4xx, s429 = key_usage.s429 + EXCLUDED.s429, "
                 "s5xx = key_usage.s5xx + EXCLUDED.s5xx, "
                 "last_used_ms = GREATEST(key_usage.last_used_ms, EXCLUDED.last_used_ms)");
  conn_->prepare(
      "recent_latencies",
      "SELECT latency_us FROM request_log WHERE key_id <> 0 AND key_id = $1 ORDER BY id DESC LIMIT $2");
}

void PostgresStore::migrate() {
  pqxx::work tx(*conn_, "migrate");
  // Two gateways starting together must not both create the tables.
  tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
  int64_t current = 0;
  if (!tx.exec1("SELECT to_regclass('schema_version') IS NULL")[0].as<bool>()) {
    pqxx::row row = tx.exec1("SELECT max(version) FROM schema_version");
    if (!row[0].is_null()) current = row[0].as<int64_t>();
  } else {
    tx.exec("CREATE TABLE schema_version (version integer NOT NULL)");
  }
  if (current > kSchemaVersion) {
    throw StoreError(
        fmt::format("postgres: schema version {} is newer than this gateway's {}", current, kSchemaVersion));
  }
  if (current == kSchemaVersion) return;
  for (int64_t v = current; v < kSchemaVersion; ++v) tx.exec(kMigrations[v]);
  tx.exec("DELETE FROM schema_version");
  tx.exec_params("INSERT INTO schema_version (version) VALUES ($1)", kSchemaVersion);
  tx.commit();
}

StoredKey PostgresStore::insertKey(const NewKey& key) {
  return guarded("insertKey", [&](pqxx::connection& conn) {
    pqxx::work tx(conn, "insertKey");
    // Held until commit, so versions become visible in the order they were handed out and a
    // poller that saw version N never misses a smaller one committed later.
    tx.exec_prepared("key_version_lock");
    // Under the same lock as every key change, so two gateways cannot both take a name.
    if (key.uniqueName && !key.name.empty() && !tx.exec_prepared("active_key_named", key.name).empty())
      throw NameTaken("an active key is already named '" + key.name + "'");
    pqxx::row row = tx.exec_prepared1("insert_key", digestParam(key.digest), key.prefix, key.name, key.plan,
                                      key.limits, key.createdAtMs);
    tx.commit();
    StoredKey stored;
    stored.id = row[0].as<int64_t>();
    stored.version = row[1].as<int64_t>();
    stored.digest = key.digest;
    stored.prefix = key.prefix;
    stored.name = key.name;
    stored.plan = key.plan;
    stored.limits = key.limits;
    stored.createdAtMs = key.createdAtMs;
    return stored;
  });
}

std::vector<StoredKey> PostgresStore::syncConfiguredKeys(const std::vector<NewKey>& keys, int64_t atMs) {
  return guarded("syncConfiguredKeys", [&](pqxx::connection& conn) {
    pqxx::work tx(conn, "syncConfiguredKeys");
    tx.exec_prepared("key_version_lock");
    std::vector<pqxx::binarystring> digests;
    for (const NewKey& key : keys) {
      digests.push_back(digestParam(key.digest));
      // Inserted, or updated only when something differs: a restart with the same file
      // changes no version.
      tx.exec_params(
          "INSERT INTO api_keys (digest, prefix, name, plan, limits, created_at_ms, version, configured) "
          "VALUES ($1, $2, $3, $4, '', $5, nextval('key_version_seq'), true) "
          "ON CONFLICT (digest) DO UPDATE SET name = EXCLUDED.name, plan = EXCLUDED.plan, configured = true, "
          "revoked_at_ms = NULL, version = nextval('key_version_seq') "
          "WHERE api_keys.name <> EXCLUDED.name OR api_keys.plan <> EXCLUDED.plan OR NOT api_keys.configured "
          "OR api_keys.revoked_at_ms IS NOT NULL",
          digests.back(), key.prefix, key.name, key.plan, key.createdAtMs);
    }
    pqxx::result active =
        tx.exec("SELECT id, digest FROM api_keys WHERE configured AND revoked_at_ms IS NULL");
    for (const pqxx::row& row : active) {
      pqxx::binarystring digest(row[1]);
      const bool wanted = std::any_of(digests.begin(), digests.end(), [&](const pqxx::binarystring& d) {
        return d.size() == digest.size() && std::memcmp(d.data(), digest.data(), d.size()) == 0;
      });
      if (!wanted) tx.exec_prepared("revoke_key", row[0].as<int64_t>(), atMs);
    }
    std::vector<StoredKey> rows;
    for (const pqxx::binarystring& digest : digests) {
      pqxx::row row = tx.exec_params1(
          std::string("SELECT ") + kKeyColumns + " FROM api_keys k WHERE k.digest = $1", digest);
      rows.push_back(readKey(row, 0));
    }
    tx.commit();
    return rows;
  });
}

bool PostgresStore::revokeKey(int64_t id, int64_t atMs) {
  return guarded("revokeKey", [&](pqxx::connection& conn) {
    pqxx::work tx(conn, "revokeKey");
    tx.exec_prepared("key_version_lock");
    pqxx::result r = tx.exec_prepared("revoke_key", id, atMs);
    tx.commit();
    return r.affected_rows() == 1;
  });
}

bool PostgresStore::setKeyPlan(int64_t id, const std::string& plan) {
  return guarded("setKeyPlan", [&](pqxx::connection& conn) {
    pqxx::work tx(conn, "setKeyPlan");
    tx.exec_prepared("key_version_lock");
    pqxx::result r = tx.exec_prepared("set_key_plan", id, plan);
    tx.commit();
    return r.affected_rows() == 1;
  });
}

std::vector<StoredKey> PostgresStore::keysChangedSince(int64_t version) {
  return guarded("keysChangedSince", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn, "keysChangedSince");
    std::vector<StoredKey> keys;
    for (const pqxx::row& row : tx.exec_prepared("keys_since", version)) keys.push_back(readKey(row, 0));
    return keys;
  });
}

std::vector<KeyListing> PostgresStore::listKeys(int64_t afterId, int64_t limit) {
  return guarded("listKeys", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn, "listKeys");
    std::vector<KeyListing> out;
    for (const pqxx::row& row : tx.exec_prepared("list_keys", afterId, limit))
      out.push_back({readKey(row, 0), readUsage(row, kKeyColumnCount)});
    return out;
  });
}

std::pair<int64_t, int64_t> PostgresStore::countKeys() {
  return guarded("countKeys", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn, "countKeys");
    pqxx::result r = tx.exec_prepared("count_keys");
    return std::pair<int64_t, int64_t>{r[0][0].as<int64_t>(), r[0][1].as<int64_t>()};
  });
}

std::optional<KeyListing> PostgresStore::findKey(int64_t id) {
  return guarded("findKey", [&](pqxx::connection& conn) -> std::optional<KeyListing> {
    pqxx::nontransaction tx(conn, "findKey");
    pqxx::result r = tx.exec_prepared("find_key", id);
    if (r.empty()) return std::nullopt;
    return KeyListing{readKey(r[0], 0), readUsage(r[0], kKeyColumnCount)};
  });
}

std::optional<KeyListing> PostgresStore::findKeyByDigest(const Digest& digest) {
  return guarded("findKeyByDigest", [&](pqxx::connection& conn) -> std::optional<KeyListing> {
    pqxx::nontransaction tx(conn, "findKeyByDigest");
    pqxx::result r = tx.exec_prepared("find_key_digest", digestParam(digest));
    if (r.empty()) return std::nullopt;
    return KeyListing{readKey(r[0], 0), readUsage(r[0], kKeyColumnCount)};
  });
}

void PostgresStore::appendLogs(std::span<const LogRecord> records) {
  if (records.empty()) return;
  guarded("appendLogs", [&](pqxx::connection& conn) {
    pqxx::work tx(conn, "appendLogs");
    {
      static const std::vector<std::string> kColumns = {
          "time_ms", "request_id", "key_id",   "key_prefix", "listener", "route",    "method",
          "path",    "status",     "upstream", "latency_us", "bytes_in", "bytes_out"};
      pqxx::stream_to stream(tx, "request_log", kColumns);
      for (const LogRecord& r : records) {
        stream << std::tie(r.timeMs, r.requestId, r.keyId, r.keyPrefix, r.listener, r.route, r.method, r.path,
                           r.status, r.upstream, r.latencyUs, r.bytesIn, r.bytesOut);
      }
      stream.complete();
    }
    auto deltas = usageByKey(records);
    if (!deltas.empty()) {
      // Integer array literals: built from numbers only, never from request data.
      std::string columns[8];
      for (std::string& c : columns) c = "{";
      for (const auto& [keyId, d] : deltas) {
        const int64_t values[8] = {keyId,       d.requests,  d.status2xx, d.status3xx,
                                   d.status4xx, d.status429, d.status5xx, d.lastUsedMs};
        for (int i = 0; i < 8; ++i) {
          if (columns[i].size() > 1) columns[i] += ',';
          columns[i] += std::to_string(values[i]);
        }
      }
      for (std::string& c : columns) c += '}';
      tx.exec_prepared("add_usage", columns[0], columns[1], columns[2], columns[3], columns[4], columns[5],
                       columns[6], columns[7]);
    }
    tx.commit();
  });
}

std::vector<LogRow> PostgresStore::queryLogs(const LogQuery& query) {
  return guarded("queryLogs", [&](pqxx::connection& conn) {
    std::string sql = std::string("SELECT ") + kLogColumns + " FROM request_log";
    std::vector<std::string> params;
    auto where = [&](const char* condition, std::string value) {
      params.push_back(std::move(value));
      sql += fmt::format("{}{} ${}", params.size() == 1 ? " WHERE " : " AND ", condition, params.size());
    };
    if (!query.keyPrefix.empty()) where("key_prefix <> '' AND key_prefix =", query.keyPrefix);
    if (query.status) where("status =", std::to_string(*query.status));
    if (query.keyId) where("key_id <> 0 AND key_id =", std::to_string(*query.keyId));
    params.push_back(std::to_string(std::clamp<size_t>(query.limit, 1, 1000)));
    sql += fmt::format(" ORDER BY id DESC LIMIT ${}", params.size());

    pqxx::nontransaction tx(conn, "queryLogs");
    pqxx::result result = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    std::vector<LogRow> rows;
    rows.reserve(result.size());
    for (const pqxx::row& row : result) {
      LogRow out;
      out.id = row[0].as<int64_t>();
      LogRecord& r = out.record;
      r.timeMs = row[1].as<int64_t>();
      r.requestId = text(row[2]);
      r.keyId = row[3].as<int64_t>();
      r.keyPrefix = text(row[4]);
      r.listener = text(row[5]);
      r.route = text(row[6]);
      r.method = text(row[7]);
      r.path = text(row[8]);
      r.status = row[9].as<int>();
      r.upstream = text(row[10]);
      r.latencyUs = row[11].as<int64_t>();
      r.bytesIn = row[12].as<int64_t>();
      r.bytesOut = row[13].as<int64_t>();
      rows.push_back(std::move(out));
    }
    return rows;
  });
}

std::vector<int64_t> PostgresStore::recentLatenciesUs(int64_t keyId, size_t limit) {
  if (limit == 0) return {};
  return guarded("recentLatenciesUs", [&](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn, "recentLatenciesUs");
    auto capped = static_cast<int64_t>(std::min<size_t>(limit, std::numeric_limits<int64_t>::max()));
    std::vector<int64_t> out;
    for (const pqxx::row& row : tx.exec_prepared("recent_latencies", keyId, capped))
      out.push_back(row[0].as<int64_t>());
    return out;
  });
}

}  // namespace flowguard::store
