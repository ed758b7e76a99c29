#include "loadgen/connection.h"

#include "loadgen/worker.h"

namespace flowguard::loadgen {

namespace {

constexpr uint64_t kReconnectPauseMs = 10;

}  // namespace

Connection::Connection(Worker& worker, uv_loop_t* loop) : worker_(worker), loop_(loop) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

Connection::~Connection() = default;

void Connection::connect() {
  if (worker_.finishing()) return;
  tcp_ = new uv_tcp_t{};
  uv_tcp_init(loop_, tcp_);
  tcp_->data = this;
  uv_tcp_nodelay(tcp_, 1);
  parser_ =
      std::make_unique<core::Http1Parser>(core::Http1Parser::Kind::Response, core::Http1Parser::Limits{});
  connectReq_.data = this;
  state_ = State::Connecting;
  int rc = uv_tcp_connect(&connectReq_, tcp_, reinterpret_cast<const sockaddr*>(&worker_.plan().address),
                          onConnect);
  if (rc != 0) {  // no callback will come
    worker_.onConnectFailed();
    close(true);
  }
}

void Connection::onConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (status == UV_ECANCELED || self->state_ != State::Connecting) return;  // closing
  if (status != 0) {
    self->worker_.onConnectFailed();
    if (self->state_ == State::Connecting) self->close(true);
    return;
  }
  self->state_ = State::Idle;
  uv_read_start(reinterpret_cast<uv_stream_t*>(self->tcp_), onAlloc, onRead);
  self->worker_.onIdle(*self);
}

void Connection::send(const PendingRequest& request) {
  current_ = request;
  state_ = State::Busy;
  status_ = 0;
  parser_->setRequestWasHead(worker_.plan().headRequests);
  const std::string& bytes = worker_.requestBytes(request.key);
  uv_timer_start(&timer_, onTimer, worker_.plan().timeoutNs / 1'000'000, 0);
  // Most requests fit the socket buffer: try the write in place and only fall back to a
  // queued write (which keeps the buffer, owned by the worker, alive) for the remainder.
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_);
  uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  int written = uv_try_write(stream, &buf, 1);
  if (written == static_cast<int>(bytes.size())) return;
  if (written < 0 && written != UV_EAGAIN) {
    fail(false);
    return;
  }
  if (written > 0) {
    buf.base += written;
    buf.len -= written;
  }
  writeReq_.data = this;
  if (uv_write(&writeReq_, stream, &buf, 1, onWrite) != 0) fail(false);
}

void Connection::onWrite(uv_write_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (status == 0 || status == UV_ECANCELED) return;
  if (self->state_ == State::Busy) self->fail(false);
}

void Connection::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(self->readBuf_, sizeof(self->readBuf_));
}

void Connection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(stream->data);
  if (nread > 0) {
    self->onData(buf->base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    self->onEof();
  } else if (nread < 0) {
    if (self->state_ == State::Busy) {
      self->fail(false);
    } else {
      self->close(false);
    }
  }
}

void Connection::onData(const char* data, size_t len) {
  if (state_ != State::Busy) {  // nothing asked: a server's goodbye (408) or garbage
    close(false);
    return;
  }
  worker_.onBytes(current_, len);
  size_t offset = 0;
  // Parse until NeedMore even when every byte is consumed: a head without a body is
  // reported as HeadComplete first and MessageComplete on the next call.
  while (state_ == State::Busy) {
    core::Http1Parser::Result result = parser_->parse(data + offset, len - offset);
    offset += result.consumed;
    switch (result.event) {
      case core::Http1Parser::Event::NeedMore:
        return;
      case core::Http1Parser::Event::HeadComplete:
        status_ = parser_->response().status;
        keepAlive_ = parser_->response().keepAlive;
        break;
      case core::Http1Parser::Event::Body:
        break;
      case core::Http1Parser::Event::MessageComplete:
        // Interim responses (100 Continue) come before the real one.
        if (status_ >= 100 && status_ < 200) break;
        responseComplete();
        break;
      case core::Http1Parser::Event::Error:
        fail(false);
        return;
    }
  }
}

void Connection::onEof() {
  if (state_ != State::Busy) {
    close(false);
    return;
  }
  // A response whose body runs until close ends here; anything else was cut short.
  core::Http1Parser::Result result = parser_->finish();
  if (result.event == core::Http1Parser::Event::MessageComplete && status_ >= 200) {
    keepAlive_ = false;
    responseComplete();
  } else {
    fail(false);
  }
}

void Connection::responseComplete() {
  uv_timer_stop(&timer_);
  state_ = keepAlive_ ? State::Idle : State::Busy;  // Busy until closed below: no new request
  PendingRequest done = current_;
  worker_.onResponse(done, status_, uv_hrtime());
  if (!keepAlive_) {
    close(false);
  } else if (state_ == State::Idle) {
    worker_.onIdle(*this);
  }
}

void Connection::fail(bool timeout) {
  uv_timer_stop(&timer_);
  PendingRequest failed = current_;
  close(false);
  worker_.onFailure(failed, timeout, uv_hrtime());
}

void Connection::onTimer(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  if (self->state_ == State::Busy) {
    self->fail(true);
  } else if (self->state_ == State::Down) {
    self->connect();  // the pause after a failed connect is over
  }
}

void Connection::close(bool pause) {
  if (state_ == State::Closing || state_ == State::Shutdown || tcp_ == nullptr) return;
  state_ = State::Closing;
  pauseBeforeReconnect_ = pause;
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), onClosed);
}

void Connection::onClosed(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  delete reinterpret_cast<uv_tcp_t*>(handle);
  self->tcp_ = nullptr;
  if (self->state_ == State::Shutdown) return;
  self->state_ = State::Down;
  if (self->worker_.finishing() || self->worker_.exhausted()) return;
  self->worker_.onReconnect();
  if (self->pauseBeforeReconnect_) {
    uv_timer_start(&self->timer_, onTimer, kReconnectPauseMs, 0);
  } else {
    self->connect();
  }
}

void Connection::shutdown() {
  if (state_ == State::Shutdown) return;
  bool open = tcp_ != nullptr && state_ != State::Closing;
  state_ = State::Shutdown;
  if (open) uv_close(reinterpret_cast<uv_handle_t*>(tcp_), onClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace flowguard::loadgen
