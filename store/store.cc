#include "store/store.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace flowguard::store {

namespace {

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

}  // namespace

std::unique_ptr<Store> makeStore(const std::string& url, const std::string& password) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (startsWithNoCase(url, kSqlite)) {
    std::string path = url.substr(kSqlite.size());
    if (path.empty()) throw StoreError("storage url '" + url + "' names no database file");
    return std::make_unique<SqliteStore>(std::move(path));
  }
  if (startsWithNoCase(url, "postgres://") || startsWithNoCase(url, "postgresql://")) {
    return std::make_unique<PostgresStore>(postgresConnectionUrl(url, password));
  }
  // Only the scheme goes into the message: the rest may hold a password.
  size_t schemeEnd = url.find("://");
  std::string scheme = schemeEnd == std::string::npos ? std::string("(none)") : url.substr(0, schemeEnd);
  throw StoreError("storage url has an unknown scheme '" + scheme +
                   "'; expected sqlite://PATH or postgres://user@host/db");
}

}  // namespace flowguard::store
