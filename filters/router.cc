#include "filters/router.h"

#include <fmt/format.h>

#include <uv.h>

#include "core/http1_encoder.h"
#include "filters/gateway_summary.h"
#include "filters/route_match.h"

namespace flowguard::filters {

namespace {

constexpr size_t kUpstreamWriteHighWatermark = 1 << 20;

// True when `name` is one of the comma-separated tokens of a Connection header.
bool namedByConnection(std::string_view connection, std::string_view name) {
  while (!connection.empty()) {
    auto comma = connection.find(',');
    std::string_view token = connection.substr(0, comma);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (core::equalsIgnoreCase(token, name)) return true;
    if (comma == std::string_view::npos) break;
    connection.remove_prefix(comma + 1);
  }
  return false;
}

int statusFor(upstream::UpstreamFailure failure) {
  switch (failure) {
    case upstream::UpstreamFailure::ConnectTimeout:
    case upstream::UpstreamFailure::Timeout:
      return 504;
    case upstream::UpstreamFailure::Overflow:
      return 503;
    default:
      return 502;
  }
}

}  // namespace

RouterFilterFactory::RouterFilterFactory(const config::RouterConfig& config, WorkerResources& resources)
    : config_(config), resources_(resources) {
  for (const auto& route : config.routes) {
    std::string name = route.match.path.empty() ? "prefix " + route.match.prefix : "path " + route.match.path;
    for (const auto& method : route.match.methods) name += " " + method;
    if (!route.match.host.empty()) name += " host " + route.match.host;
    routeNames_.push_back(std::move(name));
  }
}

std::unique_ptr<core::Filter> RouterFilterFactory::create() {
  return std::make_unique<RouterFilter>(*this);
}

RouterFilter::RouterFilter(RouterFilterFactory& factory) : factory_(factory) {}

RouterFilter::~RouterFilter() {
  onComplete(core::StreamInfo{});  // the chain always calls it first; a safety net only
}

core::FilterStatus RouterFilter::onRequest() {
  core::RequestHead& head = callbacks().requestHead();
  if (head.method == "CONNECT") {
    callbacks().sendLocalReply(501, "CONNECT is not supported");
    return core::FilterStatus::Stop;
  }
  const config::Route* route = routeFor(factory_.config_, head, callbacks().streamInfo());
  if (route == nullptr) {
    callbacks().sendLocalReply(404, fmt::format("no route for {} {}", head.method, head.path()));
    return core::FilterStatus::Stop;
  }
  core::StreamInfo& info = callbacks().streamInfo();
  info.routeName = factory_.routeNames_[static_cast<size_t>(route - factory_.config_.routes.data())];
  if (route->directResponse) {
    const auto& direct = *route->directResponse;
    callbacks().sendLocalReply(direct.status, direct.contentType, direct.body);
    return core::FilterStatus::Stop;
  }
  if (route->handler.kind == config::RouteHandler::Summary) {
    answerSummary();
    return core::FilterStatus::Stop;
  }
  if (route->handler.kind == config::RouteHandler::AdminOnly) {
    // The original gateway served these on its one port; here they belong to the operator's
    // listener. Saying where is better than a 401 or, worse, a backend's answer.
    // Path and query, not the raw target: an absolute-form target names some other host.
    const config::AdminConfig& admin = factory_.resources_.config.admin;
    const std::string_view query = head.query();
    callbacks().sendLocalReply(404, fmt::format("served on the admin listener: {}{}{}{}", admin.localUrl(),
                                                head.path(), query.empty() ? "" : "?", query));
    return core::FilterStatus::Stop;
  }
  if (route->handler.kind != config::RouteHandler::None) {
    handler_ = std::make_unique<StoreHandler>(*route, factory_.resources_.store, factory_.resources_.config,
                                              callbacks());
    handler_->setRegistrationLimiter(factory_.resources_.registrations);
    handler_->start();
    return core::FilterStatus::Stop;
  }
  cluster_ = factory_.resources_.clusters.find(route->cluster);
  if (cluster_ == nullptr) {  // config validation makes this unreachable; answer anyway
    callbacks().sendLocalReply(503, fmt::format("unknown cluster {}", route->cluster));
    return core::FilterStatus::Stop;
  }
  info.clusterName = cluster_->name();
  if (!requestSlot_.take(cluster_->state(), upstream::ClusterSlot::Kind::Request)) {
    callbacks().sendLocalReply(503,
                               fmt::format("cluster {} overflow: max_requests reached", cluster_->name()));
    return core::FilterStatus::Stop;
  }
  cluster_->state().stats().add(upstream::ClusterStat::Requests);
  const config::ClusterConfig& clusterConfig = cluster_->config();
  timeout_ = route->timeout.value_or(clusterConfig.timeout);
  if (clusterConfig.perTryTimeout && *clusterConfig.perTryTimeout < timeout_)
    timeout_ = *clusterConfig.perTryTimeout;
  retriesLeft_ = route->retries.value_or(clusterConfig.retries);
  tryNextHost();
  return core::FilterStatus::Stop;
}

void RouterFilter::answerSummary() {
  const core::RequestHead& head = callbacks().requestHead();
  if (head.method != "GET" && head.method != "HEAD") {
    callbacks().sendLocalReply(405,
                               fmt::format("{} {} is not allowed here (use GET)", head.method, head.path()));
    return;
  }
  const SummarySources* sources = factory_.resources_.summary;
  callbacks().sendLocalReply(200, "application/json",
                             gatewaySummary(sources != nullptr ? *sources : SummarySources{}).dump() + "\n");
}

void RouterFilter::encodeUpstreamHead(std::string& out) {
  const core::RequestHead& head = callbacks().requestHead();
  const core::StreamInfo& info = callbacks().streamInfo();
  out.clear();
  out.append(head.method).append(" ").append(head.target).append(" HTTP/1.1\r\n");
  std::string_view connection = head.headers.get("connection");
  std::string_view forwardedFor;
  std::string joinedForwardedFor;  // only when the client sent the header more than once
  bool hasHost = false;
  for (const auto& field : head.headers) {
    const std::string& name = field.name;
    if (core::isHopByHopHeader(name) || core::equalsIgnoreCase(name, "content-length") ||
        core::equalsIgnoreCase(name, "expect") || core::equalsIgnoreCase(name, "x-forwarded-proto") ||
        core::equalsIgnoreCase(name, "x-request-id") || core::equalsIgnoreCase(name, "x-client-request-id") ||
        (!connection.empty() && namedByConnection(connection, name))) {
      continue;
    }
    // Identity claims are believed from trusted proxies only (listener trusted_proxies).
    if (!info.peerTrusted &&
        (core::equalsIgnoreCase(name, "x-forwarded-for") || core::equalsIgnoreCase(name, "x-real-ip") ||
         core::equalsIgnoreCase(name, "forwarded"))) {
      continue;
    }
    if (core::equalsIgnoreCase(name, "x-forwarded-for")) {
      // Re-added below as one field, in order, with the client appended.
      if (!forwardedFor.empty()) {
        joinedForwardedFor.assign(forwardedFor).append(", ").append(field.value);
        forwardedFor = joinedForwardedFor;
      } else {
        forwardedFor = field.value;
      }
      continue;
    }
    if (core::equalsIgnoreCase(name, "host")) hasHost = true;
    out.append(name).append(": ").append(field.value).append("\r\n");
  }
  if (!hasHost) out.append("host: ").append(host_->address()).append("\r\n");  // HTTP/1.0 without Host
  // The last entry is always the peer FlowGuard saw; earlier ones only came from trusted proxies.
  out.append("x-forwarded-for: ");
  if (!forwardedFor.empty()) out.append(forwardedFor).append(", ");
  out.append(info.peerAddress).append("\r\n");
  out.append("x-forwarded-proto: http\r\nx-request-id: ").append(info.requestId).append("\r\n");
  if (!info.clientRequestId.empty())
    out.append("x-client-request-id: ").append(info.clientRequestId).append("\r\n");
  if (head.framing == core::BodyFraming::ContentLength) {
    out.append("content-length: ").append(std::to_string(head.contentLength)).append("\r\n");
  } else if (head.framing == core::BodyFraming::Chunked) {
    out.append("transfer-encoding: chunked\r\n");
  }
  out.append("\r\n");
}

void RouterFilter::tryNextHost() {
  host_ = cluster_->pickHost(tried_);
  if (host_ == nullptr) {
    callbacks().sendLocalReply(503, fmt::format("no healthy upstream host in cluster {}", cluster_->name()));
    return;
  }
  attempt_.start(host_->state());
  attemptStartMs_ = static_cast<uint64_t>(cluster_->nowMs());
  attemptStartNs_ = uv_hrtime();
  // The pool may answer before newStream returns (idle connection, overflow), and a
  // failure may recurse into another attempt: only a queued request sets queued_.
  upstream::HostPool* host = host_;
  upstream::HostPool::PendingHandle handle;
  if (host->newStream(*this, handle)) queued_ = handle;
}

void RouterFilter::recordResult(upstream::AttemptResult result) {
  if (host_ == nullptr || !attempt_.takeRecord()) return;
  upstream::HostState& state = host_->state();
  if (result == upstream::AttemptResult::Success || result == upstream::AttemptResult::Http5xx) {
    state.latencyMsTotal.fetch_add(static_cast<uint64_t>(cluster_->nowMs()) - attemptStartMs_,
                                   std::memory_order_relaxed);
    state.latencySamples.fetch_add(1, std::memory_order_relaxed);
  }
  if (result != upstream::AttemptResult::Success) state.stats.add(upstream::HostStat::Failures);
  if (result == upstream::AttemptResult::ConnectFailure) state.stats.add(upstream::HostStat::ConnectFailures);
  if (cluster_->state().outlierDetector().record(state, result, cluster_->nowMs())) {
    cluster_->state().stats().add(upstream::ClusterStat::Ejections);
  }
}

bool RouterFilter::takeRetry() {
  if (retriesLeft_ <= 0 || completed_) return false;
  upstream::ClusterState& state = cluster_->state();
  if (retrySlot_.held()) {
    state.stats().add(upstream::ClusterStat::Retries);
  } else if (!retrySlot_.take(state, upstream::ClusterSlot::Kind::Retry)) {
    return false;  // one budget slot per request, however many retries it makes
  }
  --retriesLeft_;
  return true;
}

bool RouterFilter::replayable(bool requestBytesSent) {
  const core::RequestHead& head = callbacks().requestHead();
  bool bodyConsumed = request_ != RequestSent::Head && head.framing != core::BodyFraming::None;
  if (bodyConsumed) return false;
  return !requestBytesSent || core::isIdempotentMethod(head.method);
}

void RouterFilter::onPoolReady(upstream::UpstreamConnection& connection) {
  queued_.reset();
  connection_ = &connection;
  const core::RequestHead& head = callbacks().requestHead();
  connection.attach(*this, timeout_, head.method == "HEAD");
  encodeUpstreamHead(factory_.headScratch_);
  std::string_view piece = factory_.headScratch_;
  connection.write(&piece, 1);  // copies whatever the kernel does not take now
  if (head.framing == core::BodyFraming::None) {
    request_ = RequestSent::Complete;
    return;
  }
  if (request_ == RequestSent::Head) {
    request_ = RequestSent::Body;
    callbacks().startRequestBody();  // may deliver body bytes before it returns
  }
}

void RouterFilter::onPoolFailure(upstream::UpstreamFailure failure) {
  queued_.reset();
  if (failure == upstream::UpstreamFailure::Overflow) {
    // A circuit breaker, not the host, said no: no outlier record, no retry.
    endAttempt();
    callbacks().sendLocalReply(
        503, fmt::format("cluster {} overflow: too many pending requests or connections", cluster_->name()));
    return;
  }
  if (failure == upstream::UpstreamFailure::ConnectTimeout)
    cluster_->state().stats().add(upstream::ClusterStat::ConnectTimeouts);
  recordResult(upstream::AttemptResult::ConnectFailure);
  endAttempt();
  tried_.push_back(host_);
  uint32_t retryOn = cluster_->config().retryOn;
  if ((retryOn & (config::kRetryConnectFailure | config::kRetryGatewayError)) && takeRetry()) {
    tryNextHost();
    return;
  }
  giveUp(failure);
}

void RouterFilter::giveUp(upstream::UpstreamFailure failure) {
  std::string where = host_ != nullptr ? host_->address() : cluster_->name();
  callbacks().sendLocalReply(statusFor(failure),
                             fmt::format("upstream {}: {}", where, upstream::failureName(failure)));
}

void RouterFilter::onRequestBody(std::string_view data, bool endStream, const core::HeaderMap* trailers) {
  if (handler_) {
    handler_->onBody(data, endStream);
    return;
  }
  if (connection_ == nullptr) return;
  if (callbacks().requestHead().framing == core::BodyFraming::Chunked) {
    std::string_view pieces[3];
    size_t n = 0;
    chunkLine_.clear();
    if (!data.empty()) {
      core::encodeChunkHeader(data.size(), chunkLine_);
      pieces[n++] = chunkLine_;
      pieces[n++] = data;
    }
    if (endStream) {
      std::string last = data.empty() ? std::string() : std::string(core::kChunkEnd);
      core::encodeLastChunk(trailers, last);
      // chunkLine_ may be referenced by pieces: keep the tail in its own string.
      pieces[n++] = last;
      connection_->write(pieces, n);
    } else {
      if (!data.empty()) pieces[n++] = core::kChunkEnd;
      connection_->write(pieces, n);
    }
  } else if (!data.empty()) {
    connection_->write(&data, 1);
  }
  if (endStream) request_ = RequestSent::Complete;
  if (connection_ != nullptr && connection_->queuedBytes() > kUpstreamWriteHighWatermark && !bodyPaused_) {
    bodyPaused_ = true;
    callbacks().pauseRequestBody();
  }
}

void RouterFilter::onUpstreamWritable() {
  if (bodyPaused_) {
    bodyPaused_ = false;
    callbacks().resumeRequestBody();
  }
}

void RouterFilter::onUpstreamHeaders(core::ResponseHead& head, bool endStream) {
  if (head.status == 101) {
    // The request's Upgrade header was stripped as hop-by-hop, so a switch of protocols
    // is an upstream fault; the bytes that follow are not HTTP.
    recordResult(upstream::AttemptResult::GatewayFailure);
    endAttempt();
    auto* connection = connection_;
    connection_ = nullptr;
    if (connection != nullptr) connection->abort();
    callbacks().sendLocalReply(
        502, fmt::format("upstream {}: unexpected 101 Switching Protocols", host_->address()));
    return;
  }
  if (host_ != nullptr) {
    upstream::HostState& state = host_->state();
    state.recordStatus(head.status);
    state.latency.recordShared((uv_hrtime() - attemptStartNs_) / 1000);
  }
  if (head.status >= 500) {
    recordResult(upstream::AttemptResult::Http5xx);
    uint32_t retryOn = cluster_->config().retryOn;
    bool gatewayError = head.status == 502 || head.status == 503 || head.status == 504;
    bool wanted = (retryOn & config::kRetry5xx) || ((retryOn & config::kRetryGatewayError) && gatewayError);
    // Nothing of this answer has reached the client yet: it can still be dropped.
    if (wanted && replayable(true) && takeRetry()) {
      if (endStream) response_ = ResponseRead::Complete;  // nothing left to read on it
      dropConnection();
      response_ = ResponseRead::Waiting;  // the next attempt's answer
      endAttempt();
      tried_.push_back(host_);
      tryNextHost();
      return;
    }
  } else {
    recordResult(upstream::AttemptResult::Success);
  }
  response_ = endStream ? ResponseRead::Complete : ResponseRead::Started;
  core::StreamInfo& info = callbacks().streamInfo();
  info.upstreamHost = host_->address();
  info.upstreamHeadersMicros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - info.start)
          .count());
  core::removeHopByHopHeaders(head.headers);
  callbacks().encodeHeaders(head, endStream);
  if (endStream) finishUpstream();
}

void RouterFilter::onUpstreamData(std::string_view data, bool endStream) {
  if (endStream) response_ = ResponseRead::Complete;
  callbacks().encodeData(data, endStream);
  if (endStream) finishUpstream();
}

void RouterFilter::onUpstreamTrailers(const core::HeaderMap& trailers) {
  response_ = ResponseRead::Complete;
  callbacks().encodeTrailers(trailers);
  finishUpstream();
}

void RouterFilter::finishUpstream() {
  dropConnection();  // the response is complete: back to the pool if the request is too
}

void RouterFilter::dropConnection() {
  if (connection_ == nullptr) return;
  auto* connection = connection_;
  connection_ = nullptr;
  const bool requestComplete = request_ == RequestSent::Complete;
  if (response_ == ResponseRead::Complete) {
    connection->release(requestComplete);
  } else if (requestComplete) {
    connection->discardResponse();  // read the rest and drop it; the connection may be kept
  } else {
    connection->abort();
  }
}

void RouterFilter::onUpstreamReset(upstream::UpstreamFailure failure) {
  connection_ = nullptr;
  if (completed_) return;
  if (failure == upstream::UpstreamFailure::Timeout)
    cluster_->state().stats().add(upstream::ClusterStat::ResponseTimeouts);
  recordResult(upstream::AttemptResult::GatewayFailure);
  endAttempt();
  if (response_ != ResponseRead::Waiting) {
    callbacks().resetStream(
        fmt::format("upstream {}: {} mid-response", host_->address(), upstream::failureName(failure)));
    return;
  }
  tried_.push_back(host_);
  uint32_t retryOn = cluster_->config().retryOn;
  bool wanted =
      failure == upstream::UpstreamFailure::Reset
          ? (retryOn & config::kRetryReset) != 0
          : (retryOn & (config::kRetry5xx | config::kRetryGatewayError)) != 0;  // timeout, bad answer
  if (wanted && replayable(true) && takeRetry()) {
    tryNextHost();
    return;
  }
  giveUp(failure);
}

void RouterFilter::onDownstreamWatermark(bool above) {
  if (connection_ == nullptr) return;
  if (above) {
    connection_->pauseReading();
  } else {
    connection_->resumeReading();
  }
}

void RouterFilter::onComplete(const core::StreamInfo&) {
  if (completed_) return;
  completed_ = true;
  handler_.reset();  // drops a store job still running
  endAttempt();
  requestSlot_.release();
  retrySlot_.release();
  if (queued_) {
    host_->cancel(*queued_);
    queued_.reset();
  }
  dropConnection();  // the client went away: what it did not take is read and dropped
}

}  // namespace flowguard::filters
