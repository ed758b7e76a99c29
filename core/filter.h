// The filter API: what a filter implements and what it may call back.
//
// Phases of one request, in order (each runs on the worker thread that owns the request):
//   1. onRequest          — request head, in config order. Continue runs the next filter;
//                           Stop means the filter will later call continueChain() or
//                           sendLocalReply() (e.g. when Redis has answered).
//   2. onRequestData      — request body, in config order, for filters whose bodyPhases()
//      onRequestTrailers    include kRequestBody; then the terminal filter's onRequestBody.
//   3. onResponseHeaders  — in reverse config order, for proxied and local replies alike,
//                           before the head is written downstream. Stop holds the head (and
//                           the body behind it) until the filter calls continueChain().
//   4. onResponseData     — response body, in reverse config order, for filters whose
//      onResponseTrailers   bodyPhases() include kResponseBody.
//   5. onComplete         — exactly once per filter that was created, after the response was
//                           fully written, after a local reply, or when the client went away.
//                           After it the filter must not touch its callbacks again and must
//                           drop any async work still pending (the request is being destroyed).
//
// Bodies. A filter that does not ask for a direction's body is never called on its bytes,
// and the bytes are not copied for it: filters that look only at heads cost nothing per
// body byte. A data phase answers Continue (the bytes, changed or not, go on) or
// StopAndBuffer (the chain keeps them; the filter is called again with everything kept so
// far when more arrive, and they go on when it answers Continue or calls continueChain()).
// Bytes a filter keeps this way, or that wait behind a filter whose head phase stopped, are
// limited to its buffer limit (the listener's buffer_limit unless the filter sets its own):
// beyond it the request gets 413, and the response 500 (or a reset, once its head was sent).
// The terminal filter's request body waits in the chain until it asks for it with
// startRequestBody(); beyond the limit, the client is no longer read until then.
// A filter that changes the length of a body also fixes the head it has seen: it drops the
// Content-Length and sets the framing to chunked (the connection closes instead for an
// HTTP/1.0 client), or holds the head (Stop) until it knows the length.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/http_message.h"
#include "core/recycler.h"

typedef struct uv_loop_s uv_loop_t;

namespace flowguard::core {

enum class FilterStatus { Continue, Stop };
enum class DataStatus { Continue, StopAndBuffer };

// What a filter's bodyPhases() returns: the directions whose body it wants to see.
enum BodyPhase : uint8_t { kNoBody = 0, kRequestBody = 1, kResponseBody = 2 };

// Body bytes on their way through the chain. A filter reads view(); one that changes them
// calls bytes(), which copies them into storage the chain owns the first time, so filters
// that only look copy nothing.
class BodyChunk {
 public:
  // Bytes the chain does not own yet (a view into the read buffer): copied on bytes().
  BodyChunk(std::string_view bytes, std::string& storage) : view_(bytes), storage_(storage) {}
  // Bytes that are already all of `storage`.
  explicit BodyChunk(std::string& storage) : view_(storage), storage_(storage), owned_(true) {}

  std::string_view view() const { return owned_ ? std::string_view(storage_) : view_; }
  size_t size() const { return view().size(); }
  bool empty() const { return size() == 0; }
  std::string& bytes() {
    if (!owned_) {
      storage_.assign(view_);
      owned_ = true;
    }
    return storage_;
  }
  bool owned() const { return owned_; }

 private:
  std::string_view view_;
  std::string& storage_;
  bool owned_ = false;
};

// Who is calling, as the auth filter established it. Filters that need more (the rate
// limiter wants the key's own limit) know the concrete type the auth filter stores.
struct AuthenticatedKey {
  virtual ~AuthenticatedKey() = default;
  std::string id;                          // stable identity for counters ("static:demo", a database id...)
  std::string name;                        // for logs and metrics
  std::string prefix;                      // the first characters of the key: enough to recognise, not to use
  int64_t storedKeyId = 0;                 // its row in the key store; 0 for keys written in flowguard.yaml
  std::array<unsigned char, 32> digest{};  // SHA-256 of the key (compare these, never keys)
};

// Facts about one request that every filter may read, and the router and the connection
// fill in as the request goes.
struct StreamInfo {
  std::string requestId;          // X-Request-Id (generated, or a trusted proxy's)
  std::string clientRequestId;    // an untrusted client's own X-Request-Id, when the listener keeps it
  std::string downstreamAddress;  // client IP (behind trusted proxies: from X-Forwarded-For)
  std::string_view peerAddress;   // the IP of the connection's other end
  bool peerTrusted = false;       // the peer is one of the listener's trusted_proxies
  std::string_view listenerName;
  std::chrono::steady_clock::time_point start;
  int responseStatus = 0;  // status sent downstream, 0 when none was sent
  uint64_t requestBodyBytes = 0;
  uint64_t responseBodyBytes = 0;
  std::string_view routeName;          // the router's matched route ("prefix /api"), empty if none
  std::string_view clusterName;        // the route's cluster, empty if none
  std::string upstreamHost;            // "ip:port" of the host that answered, empty if none
  uint64_t upstreamHeadersMicros = 0;  // from start until the upstream's response head, 0 if none
  std::string localReplyReason;        // why FlowGuard answered itself, empty when proxied
  bool downstreamReset = false;        // the client went away before the response was complete
  std::shared_ptr<const AuthenticatedKey> apiKey;  // null for anonymous requests
  // The route the request matched, kept by the first filter that needed it so that the
  // router and the filters before it match once (filters/route_match.h routeFor()).
  // `routeTable` says which route table it is from (core does not know routes). A filter that
  // changes what routes match on (method, path, Host) calls clearRouteCache().
  const void* routeTable = nullptr;
  const void* route = nullptr;
  void clearRouteCache() { routeTable = route = nullptr; }

  // Ready for the next request on the same connection; strings keep their capacity.
  void reset() {
    requestId.clear();
    clientRequestId.clear();
    downstreamAddress.clear();
    peerAddress = {};
    peerTrusted = false;
    listenerName = {};
    start = {};
    responseStatus = 0;
    requestBodyBytes = responseBodyBytes = 0;
    routeName = {};
    clusterName = {};
    upstreamHost.clear();
    upstreamHeadersMicros = 0;
    localReplyReason.clear();
    downstreamReset = false;
    apiKey.reset();
    clearRouteCache();
  }
};

// Implemented by the filter chain; handed to each filter before its onRequest.
class FilterCallbacks {
 public:
  virtual ~FilterCallbacks() = default;

  virtual RequestHead& requestHead() = 0;
  virtual StreamInfo& streamInfo() = 0;
  virtual uv_loop_t* loop() = 0;

  // Lifts this filter's stop: after onRequest or onResponseHeaders returned Stop, the next
  // filter runs; after a data phase answered StopAndBuffer (or a trailers phase Stop), what
  // the chain kept goes on. May be called from inside the phase that stopped.
  virtual void continueChain() = 0;

  // Answers the request locally with {"error": reason, "status": N, "request_id": ...}.
  // Allowed at any phase before response headers were sent downstream; afterwards it
  // resets the stream instead (the client sees the connection close).
  virtual void sendLocalReply(int status, std::string_view reason) = 0;
  // Local reply with a body of the caller's choosing (direct responses, /register ...).
  virtual void sendLocalReply(int status, std::string_view contentType, std::string body) = 0;

  // How many body bytes the chain may keep for this filter (see the top of this file).
  virtual void setBufferLimit(size_t bytes) = 0;
  // The response head while it waits at this filter (its onResponseHeaders returned Stop),
  // for a filter that changes it once it has seen the body; null otherwise.
  virtual ResponseHead* heldResponseHead() = 0;

  // Starts reading the request body (sends "100 Continue" first when the client asked for
  // it). The terminal filter calls it when it is ready for the body, which then arrives in
  // its onRequestBody; a request without body gets onRequestBody("", true) at once. A
  // filter that needs the body before its onRequest can decide calls it too.
  virtual void startRequestBody() = 0;

  // ---- for the terminal filter --------------------------------------------------------
  // Backpressure: stop / restart reading the request body from the client.
  virtual void pauseRequestBody() = 0;
  virtual void resumeRequestBody() = 0;

  // Streams the response downstream. `head` runs through onResponseHeaders first.
  virtual void encodeHeaders(ResponseHead& head, bool endStream) = 0;
  virtual void encodeData(std::string_view data, bool endStream) = 0;
  // Ends a chunked response with trailers.
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  // Bytes queued downstream but not yet written; the router pauses its upstream above a
  // watermark and waits for onDownstreamWatermark(false).
  virtual size_t downstreamQueuedBytes() const = 0;
  // Gives up on the exchange: closes the client connection (used when the upstream fails
  // after response bytes were already sent, so no clean reply is possible).
  virtual void resetStream(std::string_view reason) = 0;
};

// Made and dropped once per request: recycled storage (core/recycler.h).
class Filter : public Recycled {
 public:
  virtual ~Filter() = default;

  // Called by the chain before onRequest; the reference stays valid until onComplete.
  void setCallbacks(FilterCallbacks& callbacks) { callbacks_ = &callbacks; }

  // Which bodies this filter's data and trailers phases want (BodyPhase bits). Asked once,
  // when the request's chain is made.
  virtual uint8_t bodyPhases() const { return kNoBody; }

  virtual FilterStatus onRequest() { return FilterStatus::Continue; }
  // `endStream` is false on the last data call when trailers follow.
  virtual DataStatus onRequestData(BodyChunk& /*data*/, bool /*endStream*/) { return DataStatus::Continue; }
  virtual FilterStatus onRequestTrailers(HeaderMap& /*trailers*/) { return FilterStatus::Continue; }
  // Terminal filter only: the request body, as the filters before it left it. `trailers` is
  // non-null on the last call of a chunked body that carried trailer fields.
  virtual void onRequestBody(std::string_view /*data*/, bool /*endStream*/, const HeaderMap* /*trailers*/) {}
  virtual FilterStatus onResponseHeaders(ResponseHead& /*head*/, bool /*endStream*/) {
    return FilterStatus::Continue;
  }
  virtual DataStatus onResponseData(BodyChunk& /*data*/, bool /*endStream*/) { return DataStatus::Continue; }
  virtual FilterStatus onResponseTrailers(HeaderMap& /*trailers*/) { return FilterStatus::Continue; }
  // Downstream write queue went above (true) or back below (false) its watermark.
  virtual void onDownstreamWatermark(bool /*above*/) {}
  virtual void onComplete(const StreamInfo& /*info*/) {}

 protected:
  FilterCallbacks& callbacks() { return *callbacks_; }

 private:
  FilterCallbacks* callbacks_ = nullptr;
};

// Makes one filter per request. One factory per (worker, listener, filter entry): it is
// only used on its worker's thread, so it may hold per-worker state without locks.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::unique_ptr<Filter> create() = 0;
};

}  // namespace flowguard::core
