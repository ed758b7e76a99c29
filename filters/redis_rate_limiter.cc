#include "filters/redis_rate_limiter.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

namespace flowguard::filters {

namespace {

// The same arithmetic as rate_limit_algorithms.cc, on Redis's clock (TIME) so every gateway
// replica sees one time, whatever its own clock says. State is one hash per key: `tat`
// (token bucket, microseconds), or `w`/`c`/`p` (window index, its count, the count of window
// w-1). Numbers stay below 2^53, where Lua's doubles are exact; idiv corrects the rounding of
// a/b so floor division is exact too. Returns {allowed, limit, remaining, reset_ms, retry_ms}.
constexpr std::string_view kScript = R"lua(
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function ceildiv(a, b) return idiv(a + b - 1, b) end
local function int(x) return string.format('%.0f', x) end
-- Redis < 5 replicates scripts verbatim and refuses writes after TIME without this.
if redis.replicate_commands then redis.replicate_commands() end

local key = KEYS[1]
local algorithm = ARGV[1]
local requests = tonumber(ARGV[2])
local period = math.max(1, tonumber(ARGV[3]))
local burst = tonumber(ARGV[4])
if requests <= 0 then return {0, 0, 0, period, period} end

local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local nowMs = idiv(nowUs, 1000)

if algorithm == 'tb' then
  if burst <= 0 then burst = requests end
  local t = math.max(1, idiv(period * 1000, requests))
  local tau = (math.min(burst, idiv(2 ^ 51, t)) - 1) * t
  local tat = tonumber(redis.call('HGET', key, 'tat')) or 0
  if nowUs < tat - tau then
    return {0, burst, 0, ceildiv(tat - nowUs, 1000), math.max(1, ceildiv(tat - tau - nowUs, 1000))}
  end
  local newTat = math.max(tat, nowUs) + t
  local reset = ceildiv(newTat - nowUs, 1000)
  redis.call('HSET', key, 'tat', int(newTat))
  -- A bucket may need longer than two periods to drain when burst > 2 * requests.
  redis.call('PEXPIRE', key, int(math.max(2 * period, reset)))
  local slack = nowUs + tau - newTat
  local remaining = 0
  if slack >= 0 then remaining = idiv(slack, t) + 1 end
  return {1, burst, remaining, reset, 0}
end

local idx = idiv(nowMs, period)
local elapsed = nowMs - idx * period
local state = redis.call('HMGET', key, 'w', 'c', 'p')
local w, c, p = tonumber(state[1]), tonumber(state[2]) or 0, tonumber(state[3]) or 0
if w == nil or w < idx then
  if w ~= nil and w == idx - 1 then p = c else p = 0 end
  w, c = idx, 0
end
-- A window ahead of our clock (Redis's clock stepped back): the request counts in it.
local ahead = w - idx
local untilEnd = ahead * period + (period - elapsed)
local allowed, remaining, reset, retry

if algorithm == 'fw' then
  reset = untilEnd
  if c >= requests then
    allowed, remaining, retry = 0, 0, math.max(1, untilEnd)
  else
    c = c + 1
    allowed, remaining, retry = 1, requests - c, 0
  end
else
  -- Sliding: prev * (P - e) + cur * P < limit * P, all scaled by the period.
  local e = elapsed
  if ahead > 0 then e = 0 end
  local weighted = p * (period - e)
  if c < requests and weighted + c * period < requests * period then
    local used = ceildiv(weighted, period) + c + 1
    c = c + 1
    allowed, retry, reset = 1, 0, untilEnd + period
    remaining = 0
    if used < requests then remaining = requests - used end
  else
    local wait
    if c < requests then
      wait = period - idiv((requests - c) * period - 1, p) - e
    else
      wait = untilEnd + period - idiv(requests * period - 1, c)
    end
    allowed, remaining, retry = 0, 0, math.max(1, wait)
    reset = untilEnd
    if c > 0 then reset = untilEnd + period end
  end
end
redis.call('HSET', key, 'w', int(w), 'c', int(c), 'p', int(p))
redis.call('PEXPIRE', key, int(math.max(2 * period, untilEnd + period)))
return {allowed, requests, remaining, reset, retry}
)lua";

constexpr uint64_t kMinBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 5'000;
// How long connect + AUTH/SELECT/SCRIPT LOAD may take: hiredis 0.14 has no connect timeout,
// and a host that drops SYNs would otherwise keep us "connecting" forever.
constexpr uint64_t kConnectTimeoutMs = 1'000;

const char* algorithmArg(config::RateLimitAlgorithm algorithm) {
  switch (algorithm) {
    case config::RateLimitAlgorithm::FixedWindow:
      return "fw";
    case config::RateLimitAlgorithm::SlidingWindow:
      return "sw";
    case config::RateLimitAlgorithm::TokenBucket:
      break;
  }
  return "tb";
}

// A decimal number in a fixed buffer: the argv of one EVALSHA allocates nothing.
struct Decimal {
  std::array<char, 24> text{};
  size_t size = 0;
  explicit Decimal(uint64_t value) {
    size = static_cast<size_t>(std::to_chars(text.data(), text.data() + text.size(), value).ptr - text.data());
  }
};

// hiredis 0.14's libuv adapter ignores poll errors (status != 0), and libuv reports a
// refused connect only as such an error: the context would wait for the connect timeout.
// Same hooks as the adapter, with upstream's fix (hiredis 1.0): on an error, let hiredis
// handle the events it asked for, and it finds the socket error itself.
void onPoll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<redisLibuvEvents*>(handle->data);
  const int ready = status ? p->events : events;
  if (p->context && (ready & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (ready & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

void updatePoll(void* privdata, int add, int remove) {
  auto* p = static_cast<redisLibuvEvents*>(privdata);
  p->events = (p->events | add) & ~remove;
  if (p->events) {
    uv_poll_start(&p->handle, p->events, onPoll);
  } else {
    uv_poll_stop(&p->handle);
  }
}

int attachToLoop(redisAsyncContext* ac, uv_loop_t* loop) {
  if (redisLibuvAttach(ac, loop) != REDIS_OK) return REDIS_ERR;
  ac->ev.addRead = [](void* p) { updatePoll(p, UV_READABLE, 0); };
  ac->ev.delRead = [](void* p) { updatePoll(p, 0, UV_READABLE); };
  ac->ev.addWrite = [](void* p) { updatePoll(p, UV_WRITABLE, 0); };
  ac->ev.delWrite = [](void* p) { updatePoll(p, 0, UV_WRITABLE); };
  return REDIS_OK;
}

uv_timer_t* newTimer(uv_loop_t* loop, void* owner) {
  auto* timer = new uv_timer_t;
  uv_timer_init(loop, timer);
  timer->data = owner;
  return timer;
}

// The timer's memory goes in libuv's close callback, so its owner may be gone already.
void closeTimer(uv_timer_t*& timer) {
  if (!timer) return;
  uv_timer_stop(timer);
  timer->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer = nullptr;
}

}  // namespace

struct RedisRateLimiter::Impl {
  enum class State { Idle, Connecting, Up, Down, Closed };

  struct Pending {
    Callback callback;
    std::string key;  // kept for the one retry after NOSCRIPT
    config::RateLimitSpec spec;
    bool retried = false;
  };
  struct Deadline {
    uint64_t at;  // loop time, ms
    Handle handle;
  };
  using Failed = std::vector<Callback>;

  uv_loop_t* loop_;
  config::RedisConfig config_;
  std::string name_;  // host:port, for log lines
  State state_ = State::Idle;
  redisAsyncContext* ctx_ = nullptr;
  bool handshakeDone_ = false;
  std::string sha_;  // the script's SHA1, once Redis told us
  uint64_t backoffMs_ = kMinBackoffMs;
  bool loggedReplyError_ = false;

  std::unordered_map<Handle, Pending> pending_;
  // Every decision has the same timeout, so deadlines come in order: a FIFO is a deadline
  // queue. Answered and cancelled handles stay until they reach the front.
  std::deque<Deadline> deadlines_;
  Handle nextHandle_ = 1;
  uv_timer_t* deadlineTimer_ = nullptr;
  uv_timer_t* connectTimer_ = nullptr;  // reconnect backoff, or connect timeout while connecting

  Impl(uv_loop_t* loop, const config::RedisConfig& config)
      : loop_(loop), config_(config), name_(config.host + ":" + std::to_string(config.port)) {}

  // ---- connection ------------------------------------------------------------------------

  void start() {
    if (state_ != State::Idle) return;
    deadlineTimer_ = newTimer(loop_, this);
    connectTimer_ = newTimer(loop_, this);
    state_ = State::Connecting;
    connect();
  }

  void connect() {
    redisAsyncContext* ac = redisAsyncConnect(config_.host.c_str(), config_.port);
    if (!ac) return connectionLost("out of memory");
    if (ac->err) {
      std::string reason = ac->errstr;
      redisAsyncFree(ac);
      return connectionLost(reason);
    }
    if (attachToLoop(ac, loop_) != REDIS_OK) {
      redisAsyncFree(ac);
      return connectionLost("cannot attach to the event loop");
    }
    ac->data = this;
    ctx_ = ac;
    handshakeDone_ = false;
    redisAsyncSetConnectCallback(ac, onConnect);
    redisAsyncSetDisconnectCallback(ac, onDisconnect);
    // Queued before the connect completes; hiredis sends them first, in this order, so every
    // decision sent afterwards on this connection runs authenticated, in the right db, and
    // finds the script loaded.
    if (!config_.password.empty()) {
      const char* argv[] = {"AUTH", config_.password.c_str()};
      const size_t lens[] = {4, config_.password.size()};
      redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{0}), 2, argv, lens);
    }
    if (config_.db != 0) {
      Decimal db(config_.db);
      const char* argv[] = {"SELECT", db.text.data()};
      const size_t lens[] = {6, db.size};
      redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{0}), 2, argv, lens);
    }
    const char* argv[] = {"SCRIPT", "LOAD", kScript.data()};
    const size_t lens[] = {6, 4, kScript.size()};
    redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{1}), 3, argv, lens);
    uv_timer_start(connectTimer_, onConnectTimeout, kConnectTimeoutMs, 0);
  }

  // Lets go of the current context without hearing from it again. Safe inside a hiredis
  // callback (hiredis then frees it when the callback returns).
  void dropContext() {
    redisAsyncContext* ac = ctx_;
    if (!ac) return;
    ctx_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
  }

  // The connection is gone or never came up: everything pending hears nullopt, decisions
  // are refused until a reconnect completes. Callbacks run last, so one that closes or
  // destroys the limiter finds it in a consistent state.
  void connectionLost(const std::string& reason) {
    if (state_ == State::Closed) return;
    if (state_ != State::Down) {
      std::fprintf(stderr, "flowguard: redis %s down: %s\n", name_.c_str(), reason.c_str());
      state_ = State::Down;
    }
    handshakeDone_ = false;
    uv_timer_start(connectTimer_, onReconnectTimer, backoffMs_, 0);
    backoffMs_ = std::min(backoffMs_ * 2, kMaxBackoffMs);
    Failed failed = takeAllPending();
    for (Callback& callback : failed) callback(std::nullopt);
  }

  void handshakeComplete() {
    handshakeDone_ = true;
    uv_timer_stop(connectTimer_);
    backoffMs_ = kMinBackoffMs;
    loggedReplyError_ = false;
    if (state_ == State::Down) std::fprintf(stderr, "flowguard: redis %s up\n", name_.c_str());
    state_ = State::Up;
  }

  // hiredis is freeing `ac` (a null reply, or the connect/disconnect callback): forget it,
  // and unhook it so its remaining callbacks cannot reach us even if a user callback below
  // destroys the limiter.
  void contextGone(const redisAsyncContext* ac, const char* fallback) {
    const std::string reason = ac->errstr[0] ? ac->errstr : fallback;
    ctx_ = nullptr;
    const_cast<redisAsyncContext*>(ac)->data = nullptr;
    connectionLost(reason);
  }

  static Impl* owner(const redisAsyncContext* ac) {
    auto* self = static_cast<Impl*>(ac->data);
    return self && self->ctx_ == ac ? self : nullptr;
  }

  static void onConnect(const redisAsyncContext* ac, int status) {
    Impl* self = owner(ac);
    if (!self || status == REDIS_OK) return;
    self->contextGone(ac, "connect failed");
  }

  static void onDisconnect(const redisAsyncContext* ac, int) {
    Impl* self = owner(ac);
    if (!self) return;
    self->contextGone(ac, "connection closed");
  }

  // privdata 0: AUTH or SELECT; 1: the SCRIPT LOAD that ends the handshake; 2: a reload
  // after NOSCRIPT.
  static void onHandshakeReply(redisAsyncContext* ac, void* r, void* privdata) {
    Impl* self = owner(ac);
    if (!self) return;
    auto* reply = static_cast<redisReply*>(r);
    const auto step = reinterpret_cast<uintptr_t>(privdata);
    if (!reply) {
      self->contextGone(ac, "connection closed");
      return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      std::string reason = std::string(step == 0 ? "handshake: " : "SCRIPT LOAD: ") + reply->str;
      if (step == 2) {
        // The retried EVALSHA behind it reports NOSCRIPT again and fails on its own.
        self->logReplyError(reason);
        return;
      }
      self->dropContext();
      self->connectionLost(reason);
      return;
    }
    if (step == 0) return;
    if (reply->type == REDIS_REPLY_STRING) self->sha_.assign(reply->str, reply->len);
    if (step == 1) self->handshakeComplete();
  }

  static void onConnectTimeout(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    if (!self || self->handshakeDone_) return;
    self->dropContext();
    self->connectionLost("no answer within " + std::to_string(kConnectTimeoutMs) + " ms");
  }

  static void onReconnectTimer(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    if (!self || self->state_ == State::Closed) return;
    self->connect();
  }

  void logReplyError(const std::string& message) {
    if (loggedReplyError_) return;
    loggedReplyError_ = true;
    std::fprintf(stderr, "flowguard: redis %s: %s\n", name_.c_str(), message.c_str());
  }

  // ---- decisions -------------------------------------------------------------------------

  bool acceptsDecisions() const {
    return ctx_ && (state_ == State::Up || state_ == State::Connecting);
  }

  // Sends EVALSHA (or EVAL before the first SCRIPT LOAD answered, which loads it as well).
  bool send(Handle handle, const Pending& p) {
    std::string key = "{fg:" + p.key + "}";
    Decimal requests(p.spec.requests);
    Decimal period(static_cast<uint64_t>(std::max<int64_t>(1, p.spec.period.count())));
    Decimal burst(p.spec.burst);
    const char* alg = algorithmArg(p.spec.algorithm);
    const bool bySha = !sha_.empty();
    const char* argv[] = {bySha ? "EVALSHA" : "EVAL", bySha ? sha_.c_str() : kScript.data(), "1", key.c_str(),
                          alg, requests.text.data(), period.text.data(), burst.text.data()};
    const size_t lens[] = {bySha ? size_t{7} : size_t{4}, bySha ? sha_.size() : kScript.size(), 1, key.size(),
                           2, requests.size, period.size, burst.size};
    return redisAsyncCommandArgv(ctx_, onDecisionReply, reinterpret_cast<void*>(static_cast<uintptr_t>(handle)),
                                 8, argv, lens) == REDIS_OK;
  }

  Handle decide(std::string_view key, const config::RateLimitSpec& spec, Callback callback) {
    if (!acceptsDecisions()) {
      callback(std::nullopt);
      return 0;
    }
    const Handle handle = nextHandle_++;
    auto [it, inserted] = pending_.emplace(handle, Pending{std::move(callback), std::string(key), spec, false});
    if (!send(handle, it->second)) {
      Callback cb = std::move(it->second.callback);
      pending_.erase(it);
      cb(std::nullopt);
      return 0;
    }
    const uint64_t at = uv_now(loop_) + static_cast<uint64_t>(std::max<int64_t>(0, config_.timeout.count()));
    deadlines_.push_back({at, handle});
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(deadlineTimer_))) armDeadlineTimer();
    return handle;
  }

  void armDeadlineTimer() {
    if (deadlines_.empty()) return;
    const uint64_t now = uv_now(loop_);
    const uint64_t at = deadlines_.front().at;
    uv_timer_start(deadlineTimer_, onDeadline, at > now ? at - now : 0, 0);
  }

  static void onDeadline(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    if (!self) return;
    const uint64_t now = uv_now(self->loop_);
    Failed expired;
    while (!self->deadlines_.empty() && self->deadlines_.front().at <= now) {
      auto it = self->pending_.find(self->deadlines_.front().handle);
      self->deadlines_.pop_front();
      if (it == self->pending_.end()) continue;
      expired.push_back(std::move(it->second.callback));
      self->pending_.erase(it);
    }
    self->armDeadlineTimer();
    for (Callback& callback : expired) callback(std::nullopt);
  }

  // Removes a pending decision and hands back its callback (empty when unknown: timed out,
  // cancelled, or already failed).
  Callback take(Handle handle) {
    auto it = pending_.find(handle);
    if (it == pending_.end()) return {};
    Callback callback = std::move(it->second.callback);
    pending_.erase(it);
    if (pending_.empty()) {
      deadlines_.clear();
      uv_timer_stop(deadlineTimer_);
    }
    return callback;
  }

  Failed takeAllPending() {
    Failed failed;
    failed.reserve(pending_.size());
    for (auto& [handle, p] : pending_) failed.push_back(std::move(p.callback));
    pending_.clear();
    deadlines_.clear();
    if (deadlineTimer_) uv_timer_stop(deadlineTimer_);
    return failed;
  }

  static std::optional<RateLimitDecision> parseDecision(const redisReply* reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5) return std::nullopt;
    std::array<uint64_t, 5> v{};
    for (size_t i = 0; i < 5; ++i) {
      const redisReply* e = reply->element[i];
      if (e->type != REDIS_REPLY_INTEGER || e->integer < 0) return std::nullopt;
      v[i] = static_cast<uint64_t>(e->integer);
    }
    RateLimitDecision d;
    d.allowed = v[0] != 0;
    d.limit = v[1];
    d.remaining = v[2];
    d.resetMs = v[3];
    d.retryAfterMs = v[4];
    return d;
  }

  static void onDecisionReply(redisAsyncContext* ac, void* r, void* privdata) {
    Impl* self = owner(ac);
    if (!self) return;
    auto* reply = static_cast<redisReply*>(r);
    const auto handle = static_cast<Handle>(reinterpret_cast<uintptr_t>(privdata));
    if (!reply) {
      self->contextGone(ac, "connection closed");
      return;
    }
    auto it = self->pending_.find(handle);
    if (it == self->pending_.end()) return;  // timed out or cancelled: the answer is late
    if (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("NOSCRIPT") &&
        !it->second.retried) {
      // Redis lost its script cache (restart, SCRIPT FLUSH, failover). Load it again and
      // retry once; both go out on this connection in order, so the retry finds it.
      it->second.retried = true;
      const char* argv[] = {"SCRIPT", "LOAD", kScript.data()};
      const size_t lens[] = {6, 4, kScript.size()};
      if (redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{2}), 3, argv, lens) ==
              REDIS_OK &&
          self->send(handle, it->second)) {
        return;
      }
    }
    std::optional<RateLimitDecision> decision;
    if (reply->type == REDIS_REPLY_ERROR) {
      self->logReplyError(std::string("rate-limit script: ") + reply->str);
    } else {
      decision = parseDecision(reply);
      if (!decision) self->logReplyError("rate-limit script: unexpected reply");
    }
    Callback callback = self->take(handle);
    if (callback) callback(decision);
  }

  void cancel(Handle handle) { take(handle); }

  void close() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    // Dropped, not called: the owner is going away.
    pending_.clear();
    deadlines_.clear();
    dropContext();
    closeTimer(deadlineTimer_);
    closeTimer(connectTimer_);
  }
};

RedisRateLimiter::RedisRateLimiter(uv_loop_t* loop, const config::RedisConfig& config)
    : impl_(std::make_unique<Impl>(loop, config)) {}

RedisRateLimiter::~RedisRateLimiter() { close(); }

void RedisRateLimiter::start() { impl_->start(); }

RedisRateLimiter::Handle RedisRateLimiter::decide(std::string_view key, const config::RateLimitSpec& spec,
                                                  Callback callback) {
  return impl_->decide(key, spec, std::move(callback));
}

void RedisRateLimiter::cancel(Handle handle) { impl_->cancel(handle); }

bool RedisRateLimiter::connected() const { return impl_->state_ == Impl::State::Up; }

void RedisRateLimiter::close() { impl_->close(); }

}  // namespace flowguard::filters
