#include "core/downstream_connection.h"

#include <netinet/in.h>

#include <array>
#include <cassert>
#include <random>

#include "core/http1_encoder.h"
#include "core/ip_range.h"

namespace flowguard::core {

namespace {

constexpr size_t kInitialReadBuffer = 16 * 1024;
constexpr size_t kMinReadSpace = 4 * 1024;
constexpr size_t kMaxReadBuffer = 64 * 1024;

std::string peerIp(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char ip[64] = {0};
  if (addr.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), ip, sizeof(ip));
  } else {
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), ip, sizeof(ip));
  }
  return ip;
}

// A client-supplied X-Request-Id is kept when it is short and printable, so a request
// can be traced across services; anything else is replaced.
bool acceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

void DownstreamConnection::accept(uv_stream_t* server, Dispatcher& dispatcher,
                                  std::shared_ptr<ListenerContext> listener, ConnectionSlot slot) {
  auto* conn = new DownstreamConnection(dispatcher, std::move(listener));
  conn->slot_ = std::move(slot);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&conn->tcp_)) != 0) {
    conn->close();
    return;
  }
  uv_tcp_nodelay(&conn->tcp_, 1);
  conn->clientIp_ = peerIp(&conn->tcp_);
  if (conn->listener_->connections.draining()) conn->draining_ = true;
  conn->armTimer(conn->settings().headerTimeout);  // the first request is due within the header timeout
  conn->updateReading();
}

DownstreamConnection::DownstreamConnection(Dispatcher& dispatcher, std::shared_ptr<ListenerContext> listener)
    : dispatcher_(dispatcher),
      listener_(std::move(listener)),
      writer_(reinterpret_cast<uv_stream_t*>(&tcp_)),
      parser_(Http1Parser::Kind::Request,
              Http1Parser::Limits{settings().maxHeaderBytes, settings().maxHeaders,
                                  settings().maxRequestBody == 0 ? UINT64_MAX : settings().maxRequestBody}),
      in_(kInitialReadBuffer, kMaxReadBuffer, kMinReadSpace) {
  uv_tcp_init(dispatcher.loop(), &tcp_);
  tcp_.data = this;
  timer_.init(dispatcher.loop(), this, &DownstreamConnection::onTimer);
  openHandles_ = 2;
  writer_.setCallback([this](int status) { onWriteEvent(status); });
  listener_->connections.add(this);
}

DownstreamConnection::~DownstreamConnection() {
  dispatcher_.cancelFlush(this);
  listener_->connections.remove(this);
}

void DownstreamConnection::close() {
  if (closing_) return;
  closing_ = true;
  headPending_ = startNextPending_ = false;
  dispatcher_.cancelFlush(this);
  if (chain_) {
    if (!chain_->responseComplete()) info_.downstreamReset = true;
    chain_->complete();
    dispatcher_.deferDelete(std::move(chain_));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &DownstreamConnection::onHandleClosed);
  timer_.close([](void* self) { static_cast<DownstreamConnection*>(self)->onOneHandleClosed(); });
}

void DownstreamConnection::onHandleClosed(uv_handle_t* handle) {
  static_cast<DownstreamConnection*>(handle->data)->onOneHandleClosed();
}

void DownstreamConnection::onOneHandleClosed() {
  if (--openHandles_ == 0) delete this;
}

void DownstreamConnection::drain() {
  draining_ = true;
  if (chain_) closeAfterResponse_ = true;  // the response in flight says Connection: close
  if (!chain_ && in_.empty() && parser_.betweenMessages()) close();
}

// ---- reading ------------------------------------------------------------------------------

void DownstreamConnection::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<DownstreamConnection*>(handle->data);
  std::span<char> space = self->in_.writable();
  *buf = uv_buf_init(space.data(), space.size());
}

void DownstreamConnection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<DownstreamConnection*>(stream->data);
  if (nread == 0) return;
  if (nread < 0) {
    // A client may half-close once its request is sent (netcat, some HTTP/1.0 tools): what
    // it sent in full is still answered, then the connection closes, as HAProxy does by
    // default. Aborting instead (nginx's 499, Envoy's reset) made whether such a client got
    // its answer depend on whether its FIN arrived before the response. An error, or EOF in
    // the middle of a request, aborts: that request can never be answered.
    if (nread == UV_EOF && self->chain_ && self->bodyDone_ && !self->closing_) {
      self->peerFinished_ = true;
      self->updateReading();
      return;
    }
    self->close();
    return;
  }
  self->in_.commit(static_cast<size_t>(nread));
  if (!self->chain_ && self->timerMeaning_ != TimerMeaning::Head) {
    self->armTimer(self->settings().headerTimeout);
    self->setTimerMeaning(TimerMeaning::Head);
  }
  self->processInput();
}

bool DownstreamConnection::outputBacklogged() const {
  return writer_.queuedBytes() > settings().writeHighWatermark;
}

bool DownstreamConnection::consumingInput() const {
  if (closing_) return false;
  if (!chain_) return !closeAfterResponse_ && !outputBacklogged();
  return (phase_ == Phase::Body && !bodyPaused_) || phase_ == Phase::Drain;
}

void DownstreamConnection::processInput() {
  // Requests answered synchronously (a direct response) would otherwise recurse here once
  // per pipelined request: a nested call returns, and the outer loop goes on.
  if (processing_) return;
  processing_ = true;
  struct Guard {
    bool& flag;
    ~Guard() { flag = false; }
  } guard{processing_};
  while (consumingInput()) {
    auto result = parser_.parse(in_.data(), in_.size());
    in_.consume(result.consumed);
    switch (result.event) {
      case Http1Parser::Event::NeedMore:
        if (peerFinished_ && !chain_) {
          // Every complete request is answered; the rest of one can never arrive.
          closeWhenFlushed();
          return;
        }
        releaseReadBuffer();
        updateReading();
        return;
      case Http1Parser::Event::HeadComplete:
        onRequestHead();
        break;
      case Http1Parser::Event::Body:
        if (phase_ == Phase::Drain) {
          drained_ += parser_.body().size();
          if (drained_ > settings().maxDrainBytes) {
            // Too much to read and drop: close, but only after the answer went out.
            closeAfterResponse_ = true;
            finishRequest();
            return;
          }
        } else {
          chain_->deliverBody(parser_.body(), false, nullptr);
        }
        break;
      case Http1Parser::Event::MessageComplete:
        bodyDone_ = true;
        if (timerMeaning_ == TimerMeaning::Body) {
          setTimerMeaning(TimerMeaning::Other);
          timer_.clear();
        }
        if (phase_ == Phase::Drain) {
          finishRequest();
        } else {
          phase_ = Phase::BodyDone;
          chain_->deliverBody({}, true, forwardableTrailers());
        }
        break;
      case Http1Parser::Event::Error:
        onParseError();
        return;
    }
  }
  releaseReadBuffer();
  updateReading();
}

void DownstreamConnection::releaseReadBuffer() {
  // Between requests, or while a request read whole is with the upstream, the connection
  // holds no read buffer: an idle keep-alive client costs its state (about 3 KiB), not
  // 16-64 KiB more. While a body streams in, the buffer is kept: a new one for every read
  // would be an allocation per read (and under ASan, each freed one sits in quarantine).
  if (!chain_ || bodyDone_) in_.releaseIfEmpty();
}

void DownstreamConnection::updateReading() {
  if (closing_) return;
  bool want = !in_.full() && !(chain_ && phase_ == Phase::Body && bodyPaused_);
  if (closeAfterResponse_ && !chain_) want = false;
  if (peerFinished_) want = false;
  if (!chain_ && outputBacklogged()) {
    want = false;
    if (!heldForOutput_) {
      heldForOutput_ = true;
      setTimerMeaning(TimerMeaning::Other);  // the client is not slow to send; it is not reading
      armTimer(settings().idleTimeout);
      if (listener_->connectionLimit) listener_->connectionLimit->countHeldForOutput();
      if (listener_->overload) listener_->overload->connections.countHeldForOutput();
    }
  }
  if (want && !reading_) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &DownstreamConnection::onAlloc,
                  &DownstreamConnection::onRead);
    reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
}

void DownstreamConnection::newRequestId(std::string& out) {
  // UUID v4 text, formatted by hand: this runs for every request. A per-thread generator:
  // no locks, no syscalls.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = (rng() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  uint64_t lo = (rng() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  char text[36];
  size_t at = 0;
  auto put = [&](uint64_t bits, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) text[at++] = kHex[(bits >> (i * 4)) & 0xf];
  };
  put(hi >> 32, 8);
  text[at++] = '-';
  put(hi >> 16, 4);
  text[at++] = '-';
  put(hi, 4);
  text[at++] = '-';
  put(lo >> 48, 4);
  text[at++] = '-';
  put(lo, 12);
  out.assign(text, sizeof(text));
}

void DownstreamConnection::onRequestHead() {
  timer_.clear();
  setTimerMeaning(TimerMeaning::Other);
  head_.takeFrom(parser_.request());  // swaps buffers: no copy, no allocation
  phase_ = Phase::Filters;
  bodyPaused_ = false;
  bodyDone_ = head_.framing == BodyFraming::None;
  if (bodyDone_) {
    // A message without body is complete with its head: take that event now so the
    // parser is ready for the next (pipelined) request.
    parser_.parse(in_.data(), 0);
  }
  continueSent_ = false;
  drained_ = 0;
  responseBody_ = ResponseBody::NotStarted;

  StreamInfo& info = info_;
  info.reset();
  info.start = std::chrono::steady_clock::now();
  info.listenerName = settings().name;
  applyTrustPolicy();

  // CONNECT would turn the connection into a tunnel; FlowGuard does not tunnel, and any
  // bytes the client sends next are not HTTP: answer, then close.
  if (!head_.keepAlive || draining_ || head_.method == "CONNECT") closeAfterResponse_ = true;

  // The chain current now; a reload during this request does not change it.
  const std::shared_ptr<const FilterChainFactory>& factory = listener_->filterChain;
  chain_ = std::make_unique<FilterChain>(*this, head_, info_, factory->createFilters(), factory->observer(),
                                         factory, settings().writeHighWatermark);
  if (!bodyDone_) {
    armTimer(settings().bodyTimeout);
    setTimerMeaning(TimerMeaning::Body);
  }
  if (listener_->overload && listener_->overload->isOverloaded()) {
    // Memory above the limit: shed before any filter allocates, and close so the client
    // goes elsewhere. The filters still see the reply (metrics, logs).
    closeAfterResponse_ = true;
    listener_->overload->shedRequests.fetch_add(1, std::memory_order_relaxed);
    chain_->sendLocalReply(503, "overloaded");
    return;
  }
  chain_->start();
}

// Who the client is and which of its identity headers to believe. A peer outside the
// listener's trusted_proxies is the client, and gets a request id of ours (its own goes
// upstream as X-Client-Request-Id only when the listener keeps it); the router drops its
// X-Forwarded-For, X-Real-IP and Forwarded. A trusted proxy's request id is kept, and the
// client is the rightmost X-Forwarded-For entry that is not itself a trusted proxy (nginx's
// real_ip_recursive, Envoy's xff_trusted_cidrs).
void DownstreamConnection::applyTrustPolicy() {
  StreamInfo& info = info_;
  info.peerAddress = clientIp_;
  info.downstreamAddress = clientIp_;
  const std::vector<IpRange>& trusted = settings().trustedProxies;
  if (!trusted.empty()) {
    auto peer = IpAddress::parse(clientIp_);
    info.peerTrusted = peer && anyContains(trusted, *peer);
  }
  std::string_view clientId = head_.headers.get("x-request-id");
  if (info.peerTrusted && acceptableRequestId(clientId)) {
    info.requestId.assign(clientId);
  } else {
    newRequestId(info.requestId);
    if (settings().keepClientRequestId && acceptableRequestId(clientId))
      info.clientRequestId.assign(clientId);
  }
  if (!info.peerTrusted) return;
  // Entries right to left: the nearest hop first.
  std::vector<std::string_view> hops;
  for (const Header& field : head_.headers) {
    if (!equalsIgnoreCase(field.name, "x-forwarded-for")) continue;
    forEachListItem(field.value, [&](std::string_view hop) {
      hops.push_back(hop);
      return true;
    });
  }
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    auto address = IpAddress::parse(*hop);
    if (!address) break;  // not an address: believe nothing further left
    info.downstreamAddress.assign(*hop);
    if (!anyContains(trusted, *address)) break;
  }
}

// Trailers are dropped unless the listener forwards them, and then only fields that may be
// trailers and carry no key (a client could otherwise send a second Host, Content-Length or
// X-API-Key after the body, past every check made on the head).
const HeaderMap* DownstreamConnection::forwardableTrailers() {
  const HeaderMap& received = parser_.trailers();
  if (received.empty() || !settings().forwardTrailers) return nullptr;
  trailers_.clear();
  for (const Header& field : received) {
    bool denied = forbiddenInTrailer(field.name);
    for (const std::string& name : settings().extraTrailerDeny)
      denied = denied || equalsIgnoreCase(field.name, name);
    if (!denied) trailers_.add(field.name, field.value);
  }
  return trailers_.empty() ? nullptr : &trailers_;
}

void DownstreamConnection::onParseError() {
  int status = parser_.errorStatus() != 0 ? parser_.errorStatus() : 400;
  std::string reason = parser_.errorReason().empty() ? "bad request" : parser_.errorReason();
  if (chain_ && phase_ == Phase::Drain) {
    // The answer is complete; the body we were dropping was malformed: close after it.
    closeAfterResponse_ = true;
    finishRequest();
    return;
  }
  if (chain_) {
    // The head was fine but the body was not (bad chunk framing, too large).
    closeAfterResponse_ = true;
    if (!chain_->responseStarted()) {
      chain_->sendLocalReply(status, reason);
    } else {
      reset(reason);
    }
    return;
  }
  sendErrorAndClose(status, reason);
}

// A reply for a request that never reached the filters (it could not be parsed).
void DownstreamConnection::sendErrorAndClose(int status, std::string_view reason) {
  closeAfterResponse_ = true;
  timer_.clear();
  std::string requestId;
  newRequestId(requestId);
  std::string body = localReplyBody(status, reason, requestId);
  if (RequestObserver* observer = listener_->filterChain ? listener_->filterChain->observer() : nullptr) {
    // The request log sees these too. The head could not be read (head_ may still hold
    // the previous request's), so it goes in empty.
    info_.reset();
    info_.requestId = requestId;
    info_.downstreamAddress = clientIp_;
    info_.listenerName = settings().name;
    info_.responseStatus = status;
    info_.localReplyReason = std::string(reason);
    observer->onRequestComplete(RequestHead{}, info_);
  }
  ResponseHead head = localReplyHead(status, "application/json", body.size());
  head.headers.add("connection", "close");
  headOut_.clear();
  encodeResponseHead(head, headOut_);
  std::string_view pieces[2] = {headOut_, body};
  writer_.write(pieces, 2);
  updateReading();
  if (writer_.queuedBytes() == 0) close();
}

// ---- timers -------------------------------------------------------------------------------

void DownstreamConnection::armTimer(std::chrono::milliseconds timeout) {
  timer_.set(static_cast<uint64_t>(timeout.count()));
}

void DownstreamConnection::onTimer(void* owner) {
  auto* self = static_cast<DownstreamConnection*>(owner);
  if (self->phase_ == Phase::Drain || (!self->chain_ && self->closeAfterResponse_)) {
    // A client that stops reading our answer, or trickles a body nobody wants, does
    // not get to hold the connection.
    self->close();
    return;
  }
  if (!self->chain_ && self->heldForOutput_) {
    self->close();  // the client stopped reading what it asked for
    return;
  }
  if (self->chain_ && self->timerMeaning_ == TimerMeaning::Body && !self->bodyDone_) {
    self->setTimerMeaning(TimerMeaning::Other);
    self->closeAfterResponse_ = true;
    constexpr std::string_view kReason = "timed out reading request body";
    if (!self->chain_->responseStarted()) {
      self->chain_->sendLocalReply(408, kReason);
    } else {
      self->reset(kReason);
    }
    return;
  }
  if (self->chain_ && self->timerMeaning_ == TimerMeaning::Send) {
    // The upstream waits, paused, for a client that took nothing of the answer for
    // idle_timeout: neither may hold the other forever.
    self->setTimerMeaning(TimerMeaning::Other);
    self->reset("client stopped reading the response");
    return;
  }
  if (self->chain_) return;  // requests in flight are timed by the upstream side
  if (self->timerMeaning_ == TimerMeaning::Head || !self->parser_.betweenMessages()) {
    self->sendErrorAndClose(408, "timed out reading request headers");
  } else {
    self->close();  // idle keep-alive connection
  }
}

// ---- request body -------------------------------------------------------------------------

void DownstreamConnection::startRequestBody() {
  if (!chain_ || phase_ != Phase::Filters) return;
  phase_ = bodyDone_ ? Phase::BodyDone : Phase::Body;
  if (bodyDone_) {
    chain_->deliverBody({}, true, nullptr);
    return;
  }
  if (head_.expectContinue && head_.versionMinor >= 1 && !continueSent_ && in_.empty()) {
    continueSent_ = true;
    writer_.write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  processInput();
}

void DownstreamConnection::pauseRequestBody() {
  bodyPaused_ = true;
  updateReading();
}

void DownstreamConnection::resumeRequestBody() {
  if (!bodyPaused_) return;
  bodyPaused_ = false;
  processInput();
}

// ---- response -----------------------------------------------------------------------------

void DownstreamConnection::writeHeaders(ResponseHead& head, bool endStream) {
  if (closing_ || !chain_) return;
  const RequestHead& req = head_;
  bool bodyAllowed = head.status >= 200 && head.status != 204 && head.status != 304;
  const bool noBody = !bodyAllowed || req.method == "HEAD";
  responseBody_ = noBody ? ResponseBody::None : ResponseBody::Raw;

  if (bodyAllowed && (head.framing == BodyFraming::Chunked || head.framing == BodyFraming::UntilClose)) {
    head.headers.remove("content-length");
    if (req.versionMinor >= 1) {
      head.headers.set("transfer-encoding", "chunked");
      if (!noBody) responseBody_ = ResponseBody::Chunked;
    } else {
      closeAfterResponse_ = true;  // an HTTP/1.0 client learns the end from the close
    }
  } else if (bodyAllowed && head.framing == BodyFraming::None && !head.headers.has("content-length")) {
    head.headers.add("content-length", "0");
  }
  // Everything after an unread body would be taken for the next request: close instead,
  // unless the rest is small enough to read and drop.
  if (!bodyDone_ && phase_ == Phase::Filters && (continueSent_ || !req.expectContinue)) {
    uint64_t rest = req.framing == BodyFraming::ContentLength ? req.contentLength : UINT64_MAX;
    if (rest > settings().maxDrainBytes) closeAfterResponse_ = true;
  } else if (!bodyDone_ && phase_ == Phase::Filters) {
    closeAfterResponse_ = true;  // client waits for 100 Continue: its body may never come
  }
  if (closeAfterResponse_) {
    head.headers.set("connection", "close");
  } else if (req.versionMinor == 0) {
    head.headers.set("connection", "keep-alive");
  }

  headOut_.clear();
  encodeResponseHead(head, headOut_);
  if (endStream) {
    writer_.write(headOut_);
    onResponseComplete();
    return;
  }
  headPending_ = true;
  dispatcher_.scheduleFlush(this);
}

void DownstreamConnection::flushNow() {
  if (closing_) return;
  if (headPending_) {
    headPending_ = false;
    writer_.write(headOut_);
  }
  if (startNextPending_) {
    startNextPending_ = false;
    processInput();
  }
}

void DownstreamConnection::writeData(std::string_view data, bool endStream) {
  if (closing_ || !chain_ || responseBody_ == ResponseBody::NotStarted) return;
  std::string_view pieces[4];
  size_t n = 0;
  if (headPending_) {
    headPending_ = false;
    pieces[n++] = headOut_;
  }
  if (responseBody_ != ResponseBody::None && !data.empty()) {
    if (responseBody_ == ResponseBody::Chunked) {
      chunkLine_.clear();
      encodeChunkHeader(data.size(), chunkLine_);
      pieces[n++] = chunkLine_;
      pieces[n++] = data;
      pieces[n++] = endStream ? std::string_view("\r\n0\r\n\r\n") : kChunkEnd;
    } else {
      pieces[n++] = data;
    }
  } else if (endStream && responseBody_ == ResponseBody::Chunked) {
    pieces[n++] = "0\r\n\r\n";
  }
  if (n > 0) writer_.write(pieces, n);
  if (writer_.queuedBytes() > settings().writeHighWatermark && !aboveWatermark_) {
    aboveWatermark_ = true;
    if (timerMeaning_ != TimerMeaning::Body) {
      setTimerMeaning(TimerMeaning::Send);
      armTimer(settings().idleTimeout);
    }
    chain_->downstreamWatermark(true);
  }
  if (endStream) onResponseComplete();
}

void DownstreamConnection::writeTrailers(const HeaderMap& trailers) {
  if (closing_ || !chain_ || responseBody_ == ResponseBody::NotStarted) return;
  flushNow();
  if (responseBody_ == ResponseBody::Chunked) {
    chunkLine_.clear();
    encodeLastChunk(&trailers, chunkLine_);
    writer_.write(chunkLine_);
  }
  onResponseComplete();
}

void DownstreamConnection::reset(std::string_view) {
  if (chain_ && !chain_->responseComplete()) info_.downstreamReset = true;
  close();
}

void DownstreamConnection::onWriteEvent(int status) {
  if (status < 0) {
    close();
    return;
  }
  if (timerMeaning_ == TimerMeaning::Send)
    armTimer(settings().idleTimeout);  // the client took bytes: it reads
  if (aboveWatermark_ && writer_.queuedBytes() <= settings().writeHighWatermark / 2) {
    aboveWatermark_ = false;
    if (timerMeaning_ == TimerMeaning::Send) {
      setTimerMeaning(TimerMeaning::Other);
      timer_.clear();
    }
    if (chain_) chain_->downstreamWatermark(false);
  }
  if (writer_.queuedBytes() == 0 && closeAfterResponse_ && !chain_) {
    close();
    return;
  }
  if (heldForOutput_ && !outputBacklogged() && !chain_ && !closing_) {
    heldForOutput_ = false;
    armBetweenRequestsTimer();
    processInput();
  }
}

void DownstreamConnection::onResponseComplete() {
  if (!chain_) return;
  chain_->complete();
  if (closeAfterResponse_) {
    finishRequest();
    return;
  }
  if (!bodyDone_) {
    // Answered before the body was read (an early 401/413/...): read and drop the rest
    // so the next request on this connection starts at the right byte.
    phase_ = Phase::Drain;
    setTimerMeaning(TimerMeaning::Other);
    armTimer(settings().headerTimeout);
    processInput();
    return;
  }
  finishRequest();
}

void DownstreamConnection::setTimerMeaning(TimerMeaning meaning) {
  assert(meaning != TimerMeaning::Head || !chain_);
  assert((meaning != TimerMeaning::Body && meaning != TimerMeaning::Send) || chain_);
  // The send timeout never replaces the body timeout: a client still sending is timed by that.
  assert(meaning != TimerMeaning::Send || timerMeaning_ != TimerMeaning::Body);
  timerMeaning_ = meaning;
}

void DownstreamConnection::armBetweenRequestsTimer() {
  // Part of the next request may already be buffered: then its head is on the clock.
  setTimerMeaning(in_.empty() ? TimerMeaning::Other : TimerMeaning::Head);
  armTimer(in_.empty() ? settings().idleTimeout : settings().headerTimeout);
}

void DownstreamConnection::closeWhenFlushed() {
  closeAfterResponse_ = true;
  updateReading();  // nothing more is read
  if (writer_.queuedBytes() == 0) {
    close();
  } else {
    armTimer(settings().idleTimeout);  // bounded wait for the client to read the rest
  }
}

void DownstreamConnection::finishRequest() {
  if (!chain_) return;
  dispatcher_.deferDelete(std::move(chain_));
  phase_ = Phase::Head;
  setTimerMeaning(TimerMeaning::Other);  // a backlog left now is timed as held output or a closing flush
  aboveWatermark_ = false;               // the next request starts with a fresh watermark signal
  if (closeAfterResponse_ || draining_ || (peerFinished_ && in_.empty())) {
    closeWhenFlushed();
    return;
  }
  armBetweenRequestsTimer();
  if (processing_) return;  // the outer parse loop goes on (and releases the buffer when done)
  releaseReadBuffer();
  if (in_.empty()) return;
  // A pipelined request waits. It is started at the end of this loop iteration, not
  // here: we may be deep inside the finished request's filters, which share head_ and
  // info_ with the next request.
  startNextPending_ = true;
  dispatcher_.scheduleFlush(this);
}

}  // namespace flowguard::core
