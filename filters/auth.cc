#include "filters/auth.h"

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

std::unique_ptr<core::Filter> AuthFilterFactory::create() {
  return std::make_unique<AuthFilter>(*this);
}

std::shared_ptr<const ApiKeyRecord> AuthFilterFactory::find(std::string_view key) {
  const KeyDigest digest = digestKey(key);
  auto record = view_.find(digest);
  if (record == nullptr && storedView_) record = storedView_->find(digest);
  return record;
}

core::FilterStatus AuthFilter::onRequest() {
  const config::AuthConfig& config = factory_.config_;
  core::RequestHead& head = callbacks().requestHead();
  if (anyMatches(config.exempt, head)) return core::FilterStatus::Continue;

  std::string_view key = head.headers.get(config.header);
  bool fromBearer = false;
  if (key.empty() && config.allowBearer) {
    key = bearerToken(head.headers.get("authorization"));
    fromBearer = !key.empty();
  }
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
  if (config.stripHeader) {
    // `key` points into the header being removed: it is not used after this.
    head.headers.remove(fromBearer ? std::string_view("authorization") : std::string_view(config.header));
  }
  return core::FilterStatus::Continue;
}

}  // namespace flowguard::filters
