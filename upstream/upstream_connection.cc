#include "upstream/upstream_connection.h"

#include <vector>

#include "upstream/host_pool.h"

namespace flowguard::upstream {

namespace {
constexpr size_t kReadBuffer = 64 * 1024;
constexpr size_t kMinReadSpace = 4 * 1024;
constexpr uint64_t kMaxDiscardBytes = 64 * 1024;
}  // namespace

std::string_view failureName(UpstreamFailure failure) {
  switch (failure) {
    case UpstreamFailure::ConnectFailed:
      return "connect failed";
    case UpstreamFailure::ConnectTimeout:
      return "connect timeout";
    case UpstreamFailure::Reset:
      return "connection reset";
    case UpstreamFailure::Timeout:
      return "response timeout";
    case UpstreamFailure::BadResponse:
      return "invalid response";
    case UpstreamFailure::Overflow:
      return "too many pending requests";
  }
  return "unknown";
}

UpstreamConnection::UpstreamConnection(core::Dispatcher& dispatcher, HostPool& pool,
                                       const sockaddr_storage& address,
                                       std::chrono::milliseconds connectTimeout)
    : pool_(&pool),
      address_(address),
      connectTimeout_(connectTimeout),
      writer_(reinterpret_cast<uv_stream_t*>(&tcp_)),
      parser_(core::Http1Parser::Kind::Response, core::Http1Parser::Limits{64 * 1024, 200}),
      in_(kReadBuffer, kReadBuffer, kMinReadSpace) {
  uv_tcp_init(dispatcher.loop(), &tcp_);
  tcp_.data = this;
  timer_.init(dispatcher.loop(), this, &UpstreamConnection::onTimer);
  connectReq_.data = this;
  openHandles_ = 2;
  writer_.setCallback([this](int status) { onWriteEvent(status); });
}

void UpstreamConnection::connect() {
  int rc = uv_tcp_connect(&connectReq_, &tcp_, reinterpret_cast<const sockaddr*>(&address_),
                          &UpstreamConnection::onConnect);
  if (rc != 0) {
    // Report on the next loop turn, as if the connect had failed asynchronously: the
    // pool's caller is still inside newStream() now.
    connectError_ = true;
    timer_.set(0);
    return;
  }
  timer_.set(static_cast<uint64_t>(connectTimeout_.count()));
}

void UpstreamConnection::onConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<UpstreamConnection*>(req->data);
  if (self->state_ != State::Connecting) return;  // closed meanwhile (UV_ECANCELED)
  self->timer_.clear();
  if (status != 0) {
    self->fail(UpstreamFailure::ConnectFailed);
    return;
  }
  uv_tcp_nodelay(&self->tcp_, 1);
  self->state_ = State::Idle;  // until the pool hands it to a request
  self->startReading();
  self->pool_->onConnected(self);
}

void UpstreamConnection::attach(UpstreamCallbacks& callbacks, std::chrono::milliseconds responseTimeout,
                                bool headRequest) {
  callbacks_ = &callbacks;
  ++generation_;
  state_ = State::Busy;
  responseTimeout_ = responseTimeout;
  responseDone_ = false;
  responseBytes_ = 0;
  readPaused_ = false;
  parser_.setRequestWasHead(headRequest);
  if (responseTimeout.count() > 0) {
    timer_.set(static_cast<uint64_t>(responseTimeout.count()));
  } else {
    timer_.clear();
  }
  startReading();
}

void UpstreamConnection::write(const std::string_view* pieces, size_t count) {
  if (state_ != State::Busy) return;
  writer_.write(pieces, count);
  if (writer_.queuedBytes() > kWriteLowWatermark) wroteAboveLowWatermark_ = true;
}

void UpstreamConnection::onWriteEvent(int status) {
  if (status < 0) {
    fail(UpstreamFailure::Reset);
    return;
  }
  if (wroteAboveLowWatermark_ && writer_.queuedBytes() <= kWriteLowWatermark && callbacks_) {
    wroteAboveLowWatermark_ = false;
    callbacks_->onUpstreamWritable();
  }
}

void UpstreamConnection::pauseReading() {
  readPaused_ = true;
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  // The response timeout measures the upstream's silence; while we do not read, the silence
  // is the client's doing (the downstream times a client that stops reading).
  if (state_ == State::Busy) timer_.clear();
}

void UpstreamConnection::resumeReading() {
  if (!readPaused_ || state_ != State::Busy) return;
  readPaused_ = false;
  if (responseTimeout_.count() > 0) timer_.set(static_cast<uint64_t>(responseTimeout_.count()));
  processInput();
  if (state_ == State::Busy && !readPaused_) startReading();
}

void UpstreamConnection::startReading() {
  if (reading_ || state_ == State::Closed) return;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &UpstreamConnection::onAlloc,
                &UpstreamConnection::onRead);
  reading_ = true;
}

void UpstreamConnection::release(bool requestComplete) {
  if (state_ != State::Busy) return;
  callbacks_ = nullptr;
  discarding_ = false;
  ++generation_;
  bool reusable = requestComplete && responseDone_ && parser_.response().keepAlive && in_.empty() &&
                  writer_.queuedBytes() == 0 && !writer_.failed();
  timer_.clear();
  if (pool_ == nullptr) {
    close();
    return;
  }
  pool_->onReleased(this, reusable);
}

void UpstreamConnection::abort() {
  callbacks_ = nullptr;
  close();
}

void UpstreamConnection::discardResponse() {
  if (state_ != State::Busy) return;
  callbacks_ = nullptr;
  ++generation_;
  discarding_ = true;
  discarded_ = 0;
  readPaused_ = false;
  if (responseDone_) {
    discarding_ = false;
    release(true);
    return;
  }
  startReading();
  processInput();  // part of the response may already be buffered
}

void UpstreamConnection::makeIdle(std::chrono::milliseconds idleTimeout) {
  state_ = State::Idle;
  readPaused_ = false;
  if (!parsing_) in_.releaseIfEmpty();  // a pooled connection holds no read buffer
  startReading();
  timer_.set(static_cast<uint64_t>(idleTimeout.count()));
}

void UpstreamConnection::close() {
  if (state_ == State::Closed) return;
  bool wasConnecting = state_ == State::Connecting;
  state_ = State::Closed;
  callbacks_ = nullptr;
  discarding_ = false;
  ++generation_;
  if (pool_ != nullptr) {
    HostPool* pool = pool_;
    pool_ = nullptr;
    pool->onClosed(this, wasConnecting);
  }
  closeHandles();
}

void UpstreamConnection::closeHandles() {
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &UpstreamConnection::onClosed);
  timer_.close([](void* self) { static_cast<UpstreamConnection*>(self)->onOneHandleClosed(); });
}

void UpstreamConnection::onClosed(uv_handle_t* handle) {
  static_cast<UpstreamConnection*>(handle->data)->onOneHandleClosed();
}

void UpstreamConnection::onOneHandleClosed() {
  if (--openHandles_ == 0) delete this;
}

void UpstreamConnection::fail(UpstreamFailure failure) {
  if (state_ == State::Closed) return;
  if (state_ == State::Connecting) {
    HostPool* pool = pool_;
    pool_ = nullptr;
    state_ = State::Closed;  // the pool hears onConnectFailed, not onClosed
    ++generation_;
    closeHandles();
    if (pool != nullptr) pool->onConnectFailed(this, failure);
    return;
  }
  UpstreamCallbacks* callbacks = callbacks_;
  close();
  if (callbacks != nullptr) callbacks->onUpstreamReset(failure);
}

void UpstreamConnection::onTimer(void* owner) {
  auto* self = static_cast<UpstreamConnection*>(owner);
  switch (self->state_) {
    case State::Connecting:
      self->fail(self->connectError_ ? UpstreamFailure::ConnectFailed : UpstreamFailure::ConnectTimeout);
      break;
    case State::Busy:
      self->fail(UpstreamFailure::Timeout);
      break;
    case State::Idle:
      self->close();
      break;
    case State::Closed:
      break;
  }
}

void UpstreamConnection::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<UpstreamConnection*>(handle->data);
  if (self->state_ == State::Idle) {
    // A pooled connection reads only to notice the upstream closing it (or misbehaving):
    // whatever arrives closes it unread, so it needs no buffer of its own.
    static thread_local char discard[64];
    *buf = uv_buf_init(discard, sizeof(discard));
    return;
  }
  std::span<char> space = self->in_.writable();
  *buf = uv_buf_init(space.data(), space.size());
}

void UpstreamConnection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<UpstreamConnection*>(stream->data);
  if (nread == 0) return;
  if (self->state_ == State::Idle) {
    // A pooled connection must stay silent: EOF (the upstream's keep-alive timeout) or
    // unsolicited bytes both mean it cannot be reused.
    self->close();
    return;
  }
  if (nread < 0) {
    if (self->state_ == State::Busy) {
      auto result = self->parser_.finish();  // a close-delimited body ends here
      if (result.event == core::Http1Parser::Event::MessageComplete && self->responseBytes_ > 0) {
        self->responseDone_ = true;
        UpstreamCallbacks* callbacks = self->callbacks_;
        uint64_t generation = self->generation_;
        if (callbacks != nullptr) callbacks->onUpstreamData({}, true);
        if (generation == self->generation_) self->close();
        return;
      }
    }
    self->fail(UpstreamFailure::Reset);
    return;
  }
  self->in_.commit(static_cast<size_t>(nread));
  self->responseBytes_ += static_cast<size_t>(nread);
  if (self->responseTimeout_.count() > 0) {
    self->timer_.set(static_cast<uint64_t>(self->responseTimeout_.count()));
  }
  self->processInput();
}

void UpstreamConnection::processInput() {
  // The callbacks may hand this connection back to the pool while views into in_ are still
  // in use further up the stack, so a connection that went idle meanwhile releases its
  // buffer here, once they all returned.
  bool outermost = !parsing_;
  parsing_ = true;
  parseInput();
  if (!outermost) return;
  parsing_ = false;
  if (state_ == State::Idle) in_.releaseIfEmpty();
}

void UpstreamConnection::parseInput() {
  uint64_t generation = generation_;
  while (state_ == State::Busy && !readPaused_ && generation == generation_ &&
         (callbacks_ != nullptr || discarding_)) {
    auto result = parser_.parse(in_.data(), in_.size());
    in_.consume(result.consumed);
    switch (result.event) {
      case core::Http1Parser::Event::NeedMore:
        return;
      case core::Http1Parser::Event::HeadComplete: {
        core::ResponseHead& head = parser_.response();
        bool noBody = head.framing == core::BodyFraming::None;
        if (noBody) {
          // Let the parser finish the message so the connection is reusable right away.
          auto next = parser_.parse(in_.data(), 0);
          if (next.event == core::Http1Parser::Event::MessageComplete) responseDone_ = true;
          timer_.clear();
          if (discarding_) {
            release(true);
          } else {
            callbacks_->onUpstreamHeaders(head, true);
          }
          return;
        }
        if (discarding_) break;
        // Parse what already arrived of the body before the head goes out: a framing error
        // there (a bad chunk line) is then still answered 502 instead of a response cut short.
        // Views into in_, which nothing changes meanwhile. The list's storage is the
        // connection's, lent for this response and given back (one allocation per
        // connection, not per response; a callback that reenters finds it lent and makes its own).
        std::vector<std::string_view> pieces;
        pieces.swap(bodyPieces_);
        struct GiveBack {
          std::vector<std::string_view>& pieces;
          std::vector<std::string_view>& owner;
          ~GiveBack() {
            pieces.clear();
            if (pieces.capacity() > owner.capacity()) owner.swap(pieces);
          }
        } giveBack{pieces, bodyPieces_};
        core::Http1Parser::Event last;
        for (;;) {
          auto ahead = parser_.parse(in_.data(), in_.size());
          in_.consume(ahead.consumed);
          if (ahead.event != core::Http1Parser::Event::Body) {
            last = ahead.event;
            break;
          }
          pieces.push_back(parser_.body());
        }
        if (last == core::Http1Parser::Event::Error) {
          fail(UpstreamFailure::BadResponse);
          return;
        }
        if (last == core::Http1Parser::Event::MessageComplete) {
          // Marked before the callbacks: a client that is gone by the time its answer is
          // written makes the router call discardResponse() from inside them, which must see
          // that nothing is left to read. Otherwise the connection waited, busy and without
          // a deadline, for a response it had already consumed (the soak's fd leak).
          responseDone_ = true;
          timer_.clear();
        }
        auto stillOurs = [&] {
          return generation == generation_ && state_ == State::Busy && callbacks_ != nullptr;
        };
        callbacks_->onUpstreamHeaders(head, false);
        for (std::string_view piece : pieces) {
          if (!stillOurs()) return;
          callbacks_->onUpstreamData(piece, false);
        }
        if (!stillOurs()) return;
        if (last == core::Http1Parser::Event::MessageComplete) {
          if (!parser_.trailers().empty()) {
            callbacks_->onUpstreamTrailers(parser_.trailers());
          } else {
            callbacks_->onUpstreamData({}, true);
          }
          return;
        }
        break;
      }
      case core::Http1Parser::Event::Body:
        if (discarding_) {
          discarded_ += parser_.body().size();
          if (discarded_ > kMaxDiscardBytes) {
            close();
            return;
          }
        } else {
          callbacks_->onUpstreamData(parser_.body(), false);
        }
        break;
      case core::Http1Parser::Event::MessageComplete:
        responseDone_ = true;
        timer_.clear();
        if (discarding_) {
          release(true);
        } else if (!parser_.trailers().empty()) {
          callbacks_->onUpstreamTrailers(parser_.trailers());
        } else {
          callbacks_->onUpstreamData({}, true);
        }
        return;
      case core::Http1Parser::Event::Error:
        fail(UpstreamFailure::BadResponse);
        return;
    }
  }
}

}  // namespace flowguard::upstream
