// `auth`: requests must present a known API key, in the configured header (X-API-Key by
// default) or as `Authorization: Bearer <key>`. Missing or unknown key → 401 JSON, unless
// the request matches an exempt entry and the router answers it itself. The key is looked up by its SHA-256
// digest in the KeyRegistry snapshot (a key seen lately, in this worker's RecentKeys first); the caller's
// identity goes into StreamInfo::apiKey for the filters after it (rate limit, metrics, logs); every header
// that can carry a key is removed before forwarding, on every request.
#pragma once

#include <memory>
#include <optional>

#include "config/config.h"
#include "config/filter_parsers.h"
#include "core/filter.h"
#include "filters/filter_plugin.h"
#include "filters/key_registry.h"
#include "filters/recent_keys.h"

namespace flowguard::filters {

// ---- settings ------------------------------------------------------------------------------
//
//   - name: auth
//     header: X-API-Key        # where the key is read (default); also Authorization: Bearer
//     allow_bearer: true
//     strip_header: true       # remove every key carrier before forwarding
//     keys: [ { key: <secret>, name: demo, plan: free, limit: { rate: 5/s } } ]   # besides the key store's
//     exempt: [ { path: /status, methods: [GET] } ]   # answers the gateway gives itself need no key
//
// A route turns it off with per_filter: { auth: { disabled: true } }.

// Its `name:` in flowguard.yaml, which routes' per_filter entries use too.
inline constexpr std::string_view kAuthName = "auth";

struct StaticApiKey {
  std::string key;                             // the secret as configured (hashed at start-up, never logged)
  std::string name;                            // shown in logs and metrics; rate-limit overrides refer to it
  std::string plan;                            // optional label
  std::optional<config::RateLimitSpec> limit;  // this key's own limit, over the rate limiter's default
  config::SourceLocation location;
  bool operator==(const StaticApiKey&) const = default;
};

struct AuthSettings : config::PluginSettingsOf<AuthSettings> {
  std::string header = "x-api-key";  // where the key is read (lower case); also `Authorization: Bearer`
  bool allowBearer = true;
  bool stripHeader = true;  // remove the key header(s) before forwarding upstream
  std::vector<StaticApiKey> keys;
  std::vector<config::RouteMatch> exempt;  // requests matching any of these need no key
  bool operator==(const AuthSettings&) const = default;
};

std::shared_ptr<const AuthSettings> parseAuth(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dumpAuth(const AuthSettings& settings);  // keys masked
// Warns of exempt entries that also match requests a route forwards to a cluster.
void checkAuthChain(const AuthSettings& settings, const std::vector<config::FilterConfig>& chain,
                    config::YamlReader& reader);

// The auth settings of a listener's filter entry, or null when it is another filter.
const AuthSettings* authSettingsOf(const config::FilterConfig& filter);

// A snapshot of the keys written in flowguard.yaml.
std::shared_ptr<const KeySnapshot> staticKeySnapshot(const AuthSettings& settings);

// The filter's state: the keys of its settings, shared by every worker. A reload publishes
// the new file's keys into the same registry, so requests still on the old chain see them
// too (what an operator who just revoked a key wants).
struct AuthKeys : FilterState {
  explicit AuthKeys(const AuthSettings& settings) : registry(staticKeySnapshot(settings)) {}
  KeyRegistry registry;
};

class AuthFilterFactory : public core::FilterFactory {
 public:
  // The keys of the file come from the filter's state; those of the key store, consulted
  // after them, from the worker's resources (none without `storage:`). The listener's routes
  // decide whether an exempt request is answered by the gateway (exempt) or forwarded (needs a
  // key after all), and which routes turn the filter off.
  AuthFilterFactory(const AuthSettings& config, FilterContext& context);
  // The record of a presented key, from the yaml or the key store; null when unknown.
  std::shared_ptr<const ApiKeyRecord> find(std::string_view key);
  std::unique_ptr<core::Filter> create() override;
  // True when the request needs no key: its route disables auth, or it matches an exempt
  // entry and its route is a direct response or a handler, not a cluster.
  bool exempt(const core::RequestHead& head, core::StreamInfo& info) const;
  // Removes the key header and, when bearer keys are allowed, `Authorization: Bearer`.
  void stripKeys(core::HeaderMap& headers) const;

 private:
  friend class AuthFilter;
  const AuthSettings& config_;
  const config::RouterConfig* router_ = nullptr;
  bool routesDisableAuth_ = false;  // some route has per_filter auth disabled: match every request
  std::shared_ptr<AuthKeys> keys_;
  KeyRegistry::View view_;  // this worker's cached snapshot
  std::shared_ptr<KeyRegistry> stored_;
  std::optional<KeyRegistry::View> storedView_;
  RecentKeys recent_;   // keys found lately, valid while neither registry publishes
  uint64_t epoch_ = 0;  // advanced when either view takes up a new snapshot
};

class AuthFilter final : public core::Filter {
 public:
  explicit AuthFilter(AuthFilterFactory& factory) : factory_(factory) {}
  core::FilterStatus onRequest() override;

 private:
  AuthFilterFactory& factory_;
};

}  // namespace flowguard::filters
