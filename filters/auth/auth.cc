#include "filters/auth/auth.h"

#include "filters/route_match.h"

namespace flowguard::filters {

namespace {

// The token of "Authorization: Bearer <token>", or empty.
std::string_view bearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !core::equalsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return {};
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return token;
}

}  // namespace

AuthFilterFactory::AuthFilterFactory(const AuthSettings& config, FilterContext& context)
    : config_(config),
      keys_(context.stateAs<AuthKeys>()),
      view_(keys_->registry),
      stored_(context.resources.storedKeys) {
  for (const config::FilterConfig& filter : context.listener.filters) {
    if (const auto* router = std::get_if<config::RouterConfig>(&filter.settings)) router_ = router;
  }
  if (router_ != nullptr) {
    for (const config::Route& route : router_->routes)
      routesDisableAuth_ = routesDisableAuth_ || route.disables(kAuthName);
  }
  if (stored_) storedView_.emplace(*stored_);
}

std::unique_ptr<core::Filter> AuthFilterFactory::create() {
  return std::make_unique<AuthFilter>(*this);
}

std::shared_ptr<const ApiKeyRecord> AuthFilterFactory::find(std::string_view key) {
  // Both views refresh first, so a key issued or revoked anywhere empties the cache before
  // it answers.
  const bool yamlChanged = view_.refresh();
  const bool storedChanged = storedView_ && storedView_->refresh();
  if (yamlChanged || storedChanged) ++epoch_;
  if (const auto* cached = recent_.find(key, epoch_)) return *cached;

  const KeyDigest digest = digestKey(key);
  auto record = view_.find(digest);
  if (record == nullptr && storedView_) record = storedView_->find(digest);
  if (record != nullptr) recent_.remember(key, epoch_, record);
  return record;
}

// An exemption waives the key only for a request the gateway answers itself. It is matched
// on its own, before the router runs, so without this check `{ path: /status }` (any method)
// would let `POST /status` through to the route after /status's GET-only one: the cluster.
// A route with `per_filter: { auth: { disabled: true } }` needs no key whatever it serves.
bool AuthFilterFactory::exempt(const core::RequestHead& head, core::StreamInfo& info) const {
  const bool listed = anyMatches(config_.exempt, head);
  if (!listed && !routesDisableAuth_) return false;
  const config::Route* route = router_ != nullptr ? routeFor(*router_, head, info) : nullptr;
  if (route == nullptr) return false;
  return route->disables(kAuthName) || (listed && route->cluster.empty());
}

void AuthFilterFactory::stripKeys(core::HeaderMap& headers) const {
  headers.remove(config_.header);
  if (config_.allowBearer && !bearerToken(headers.get("authorization")).empty())
    headers.remove("authorization");
}

core::FilterStatus AuthFilter::onRequest() {
  const AuthSettings& config = factory_.config_;
  core::RequestHead& head = callbacks().requestHead();
  if (factory_.exempt(head, callbacks().streamInfo())) {
    if (config.stripHeader) factory_.stripKeys(head.headers);
    return core::FilterStatus::Continue;
  }

  std::string_view key = head.headers.get(config.header);
  if (key.empty() && config.allowBearer) key = bearerToken(head.headers.get("authorization"));
  if (key.empty()) {
    callbacks().sendLocalReply(401, "missing API key (send it in " + config.header +
                                        (config.allowBearer ? " or Authorization: Bearer)" : ")"));
    return core::FilterStatus::Stop;
  }
  auto record = factory_.find(key);
  if (record == nullptr) {
    callbacks().sendLocalReply(401, "invalid API key");
    return core::FilterStatus::Stop;
  }
  callbacks().streamInfo().apiKey = std::move(record);
  // Every carrier goes, not only the one the key was read from: a client may send the key
  // both ways, and the backends never see it. (`key` points into a removed header: unused now.)
  if (config.stripHeader) factory_.stripKeys(head.headers);
  return core::FilterStatus::Continue;
}

}  // namespace flowguard::filters
