#include "filters/request_log.h"

#include <chrono>

#include "filters/path_redaction.h"

namespace flowguard::filters {

namespace {

// Paths longer than this are cut in the log (the request itself is not affected).
constexpr size_t kMaxLoggedPath = 2048;
// nginx's code for "the client closed the connection before a response was sent".
constexpr int kClientClosedRequest = 499;

}  // namespace

store::LogRecord RequestLogger::record(const core::RequestHead& head, const core::StreamInfo& info,
                                       const std::vector<std::string>& keyPathPrefixes) {
  using namespace std::chrono;
  const auto steadyNow = steady_clock::now();
  const auto elapsed =
      info.start == steady_clock::time_point{} ? steady_clock::duration::zero() : steadyNow - info.start;
  store::LogRecord r;
  r.timeMs = duration_cast<milliseconds>((system_clock::now() - elapsed).time_since_epoch()).count();
  r.requestId = info.requestId;
  if (info.apiKey) {
    r.keyId = info.apiKey->storedKeyId;
    r.keyPrefix = info.apiKey->prefix;
    if (r.keyId == 0) r.configuredKey = info.apiKey->digest;  // a yaml key: the store knows its id
  }
  r.listener = std::string(info.listenerName);
  r.route = std::string(info.routeName);
  r.method = head.method;
  // Without the query: it may carry secrets. Nor a key in the path.
  std::string redacted;
  r.path = std::string(redactKeyPath(head.path(), keyPathPrefixes, redacted).substr(0, kMaxLoggedPath));
  r.status =
      info.responseStatus != 0 ? info.responseStatus : (info.downstreamReset ? kClientClosedRequest : 0);
  r.upstream = info.upstreamHost;
  r.latencyUs = duration_cast<microseconds>(elapsed).count();
  r.bytesIn = static_cast<int64_t>(info.requestBodyBytes);
  r.bytesOut = static_cast<int64_t>(info.responseBodyBytes);
  return r;
}

void RequestLogger::onRequestComplete(const core::RequestHead& head, const core::StreamInfo& info) {
  client_.log(record(head, info, keyPathPrefixes_));
}

}  // namespace flowguard::filters
