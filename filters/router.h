// The terminal filter: matches the request to a route, then either answers it directly
// or proxies it to the route's cluster with retries onto other hosts.
//
// Retries follow the cluster's retry_on, up to the route's (or cluster's) retries, within
// the cluster's retry budget, and go to another host while an untried one is left:
//   connect-failure  refused or timed-out connects (no request byte was sent: any method)
//   reset            connection lost before any response byte (idempotent methods only)
//   5xx              a 5xx answer, or an attempt that timed out (idempotent methods only)
//   gateway-error    a 502/503/504 answer, an attempt that timed out (idempotent only), or
//                    a connect failure (as in Envoy: the gateway could not reach the host)
// Nothing is retried once a response byte went to the client, nor once request body bytes
// were streamed upstream (the body is read from the client only when an upstream
// connection is ready, and is not buffered). Each attempt's outcome feeds the cluster's
// outlier detection and host counters.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/filter.h"
#include "filters/route_match.h"
#include "filters/store_handlers.h"
#include "filters/worker_resources.h"
#include "upstream/cluster.h"
#include "upstream/host_pool.h"

namespace flowguard::filters {

class RouterFilterFactory : public core::FilterFactory {
 public:
  RouterFilterFactory(const config::RouterConfig& config, WorkerResources& resources);
  std::unique_ptr<core::Filter> create() override;

 private:
  const config::RouterConfig& config_;
  WorkerResources& resources_;
  std::vector<std::string> routeNames_;  // for metrics: "prefix /api", "path /status GET"
  // Upstream request heads are encoded here and written at once; one buffer per worker
  // instead of one allocation per request (a retry encodes the head again).
  std::string headScratch_;
  friend class RouterFilter;
};

class RouterFilter final : public core::Filter,
                           public upstream::PoolCallbacks,
                           public upstream::UpstreamCallbacks {
 public:
  explicit RouterFilter(RouterFilterFactory& factory);
  ~RouterFilter() override;

  // core::Filter
  core::FilterStatus onRequest() override;
  void onRequestBody(std::string_view data, bool endStream, const core::HeaderMap* trailers) override;
  void onDownstreamWatermark(bool above) override;
  void onComplete(const core::StreamInfo& info) override;

  // upstream::PoolCallbacks
  void onPoolReady(upstream::UpstreamConnection& connection) override;
  void onPoolFailure(upstream::UpstreamFailure failure) override;

  // upstream::UpstreamCallbacks
  void onUpstreamHeaders(core::ResponseHead& head, bool endStream) override;
  void onUpstreamData(std::string_view data, bool endStream) override;
  void onUpstreamTrailers(const core::HeaderMap& trailers) override;
  void onUpstreamReset(upstream::UpstreamFailure failure) override;
  void onUpstreamWritable() override;

 private:
  void tryNextHost();
  void giveUp(upstream::UpstreamFailure failure);
  void finishUpstream();
  void encodeUpstreamHead(std::string& out);
  // `handler: summary`: the original FlowGuard's /metrics, answered at once.
  void answerSummary();
  // Attempt bookkeeping: recordResult() feeds the host's counters and outlier detection once
  // per attempt; endAttempt() closes the attempt's "active request" on its host.
  void recordResult(upstream::AttemptResult result);
  void endAttempt() { attempt_.end(); }
  // Lets go of connection_: back to the pool when the exchange finished (or can be finished
  // by reading the rest of the response and dropping it), closed otherwise.
  void dropConnection();
  // True (and a retry budgeted and counted) when another attempt may start now.
  bool takeRetry();
  // May this request be sent again? (No body streamed; idempotent unless nothing was sent.)
  bool replayable(bool requestBytesSent);

  RouterFilterFactory& factory_;
  std::unique_ptr<StoreHandler> handler_;  // routes with a `handler:`
  upstream::Cluster* cluster_ = nullptr;
  std::chrono::milliseconds timeout_{0};
  int retriesLeft_ = 0;
  std::vector<const upstream::HostPool*> tried_;
  upstream::HostPool* host_ = nullptr;
  // Set while the request waits in host_'s queue for a connection.
  std::optional<upstream::HostPool::PendingHandle> queued_;
  upstream::UpstreamConnection* connection_ = nullptr;
  upstream::HostAttempt attempt_;  // on host_: its active count, its outcome recorded once
  uint64_t attemptStartMs_ = 0;
  uint64_t attemptStartNs_ = 0;        // uv_hrtime(), for the host's latency histogram
  upstream::ClusterSlot requestSlot_;  // circuit breaker max_requests
  upstream::ClusterSlot retrySlot_;    // retry budget
  std::string chunkLine_;
  bool bodyPaused_ = false;  // the request body was paused for the upstream's write buffer
  // How far the request went upstream. Body: the downstream body was asked for (it is
  // consumed: an attempt after this one could not send it again).
  enum class RequestSent : uint8_t { Head, Body, Complete };
  RequestSent request_ = RequestSent::Head;
  // How far the upstream's response came. Started: its head went to the chain.
  enum class ResponseRead : uint8_t { Waiting, Started, Complete };
  ResponseRead response_ = ResponseRead::Waiting;
  bool completed_ = false;  // onComplete ran: nothing more may start
};

}  // namespace flowguard::filters
