#include "filters/redis_rate_limiter.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/decimal.h"
#include "core/uv_handle.h"

namespace flowguard::filters {

namespace {

// The same arithmetic as rate_limit_algorithms.cc, on Redis's clock (TIME) so every gateway
// replica sees one time, whatever its own clock says. State is one hash per key: `tat`
// (token bucket, microseconds), or `w`/`c`/`p` (window index, its count, the count of window
// w-1). Numbers stay below 2^53, where Lua's doubles are exact; idiv corrects the rounding of
// a/b so floor division is exact too.
//
// One call decides `n` requests of one key at once, in order, exactly as n calls in a row
// would (the limiter batches the requests of one loop iteration). It returns
// {admitted, limit, remaining, reset_us, retry_ms, step_us}: the first `admitted` requests
// pass. `remaining` and `reset_us` are those of the last admitted request (of the state
// after the batch when none passed); the m-th admitted request before the last has
// max(0, remaining + m) remaining and a reset step_us * m earlier. `remaining` may be
// negative (sliding window); the rejected requests get retry_ms.
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
local n = math.max(1, tonumber(ARGV[5]) or 1)
if requests <= 0 then return {0, 0, 0, period * 1000, period, 0} end

local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local nowMs = idiv(nowUs, 1000)

if algorithm == 'tb' then
  if burst <= 0 then burst = requests end
  local t = math.max(1, idiv(period * 1000, requests))
  local tau = (math.min(burst, idiv(2 ^ 51, t)) - 1) * t
  local tat = tonumber(redis.call('HGET', key, 'tat')) or 0
  -- The i-th request (from 0) passes while max(tat, now) + i * t - tau <= now.
  local base = math.max(tat, nowUs)
  local room = nowUs + tau - base
  if room < 0 then
    return {0, burst, 0, tat - nowUs, math.max(1, ceildiv(tat - tau - nowUs, 1000)), t}
  end
  local admitted = math.min(n, idiv(room, t) + 1)
  local newTat = base + admitted * t
  redis.call('HSET', key, 'tat', int(newTat))
  -- A bucket may need longer than two periods to drain when burst > 2 * requests.
  redis.call('PEXPIRE', key, int(math.max(2 * period, ceildiv(newTat - nowUs, 1000))))
  -- slack >= -t here, so this is 0 exactly when the last admitted request took the last token.
  local remaining = idiv(nowUs + tau - newTat, t) + 1
  local retry = 0
  if admitted < n then retry = math.max(1, ceildiv(newTat - tau - nowUs, 1000)) end
  return {admitted, burst, remaining, newTat - nowUs, retry, t}
end

local idx = idiv(nowMs, period)
local elapsed = nowMs - idx * period
local state = redis.call('HMGET', key, 'w', 'c', 'p')
local w, c, p = tonumber(state[1]), tonumber(state[2]) or 0, tonumber(state[3]) or 0
if w == nil or w < idx then
  if w ~= nil and w == idx - 1 then p = c else p = 0 end
  w, c = idx, 0
end
-- A window ahead of our clock (Redis's clock stepped back): the requests count in it.
local ahead = w - idx
local untilEnd = ahead * period + (period - elapsed)
local admitted, remaining, reset, retry = 0, 0, untilEnd, 0

if algorithm == 'fw' then
  admitted = math.max(0, math.min(n, requests - c))
  c = c + admitted
  remaining = requests - c
  if admitted < n then retry = math.max(1, untilEnd) end
else
  -- Sliding: a request passes while prev * (P - e) + cur * P < limit * P.
  local e = elapsed
  if ahead > 0 then e = 0 end
  local weighted = p * (period - e)
  while admitted < n and c < requests and weighted + c * period < requests * period do
    c = c + 1
    admitted = admitted + 1
  end
  remaining = requests - (ceildiv(weighted, period) + c)
  if c > 0 then reset = untilEnd + period end
  if admitted < n then
    local wait
    if c < requests then
      wait = period - idiv((requests - c) * period - 1, p) - e
    else
      wait = untilEnd + period - idiv(requests * period - 1, c)
    end
    retry = math.max(1, wait)
  end
end
if admitted > 0 then
  redis.call('HSET', key, 'w', int(w), 'c', int(c), 'p', int(p))
  redis.call('PEXPIRE', key, int(math.max(2 * period, untilEnd + period)))
end
return {admitted, requests, remaining, reset * 1000, retry, 0}
)lua";

constexpr uint64_t kMinBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 5'000;
// How long connect + AUTH/SELECT/SCRIPT LOAD may take: hiredis 0.14 has no connect timeout,
// and a host that drops SYNs would otherwise keep us "connecting" forever.
constexpr uint64_t kConnectTimeoutMs = 1'000;
// Requests of one key decided by one script call; a bound on the work Redis does at once.
constexpr size_t kMaxBatch = 256;

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

}  // namespace

struct RedisRateLimiter::Impl {
  enum class State { Idle, Connecting, Up, Down, Closed };

  // The requests of one key (and one limit) that arrived in the same loop iteration: one
  // EVALSHA decides them all, so Redis runs the script once per key per iteration instead of
  // once per request. Handles stay in arrival order; the script admits a prefix of them.
  struct Batch {
    std::string key;  // with its hash tag: {fg:<key>}
    config::RateLimitSpec spec;
    std::vector<Handle> handles;
    bool retried = false;  // after NOSCRIPT, once
  };
  struct Deadline {
    uint64_t at;  // loop time, ms
    Handle handle;
  };

  uv_loop_t* loop_;
  config::RedisConfig config_;
  std::string name_;  // host:port, for log lines
  State state_ = State::Idle;
  redisAsyncContext* ctx_ = nullptr;
  bool handshakeDone_ = false;
  std::string sha_;  // the script's SHA1, once Redis told us
  uint64_t backoffMs_ = kMinBackoffMs;
  bool loggedReplyError_ = false;

  // Decisions asked for and not yet answered, timed out or cancelled.
  std::unordered_map<Handle, Callback> pending_;
  // Every decision has the same timeout, so deadlines come in order: a FIFO is a deadline
  // queue. Answered and cancelled handles stay until they reach the front.
  std::deque<Deadline> deadlines_;
  Handle nextHandle_ = 1;
  // This iteration's batches, sent when it ends; openIndex_ finds a batch by key and limit.
  std::vector<Batch> open_;
  std::vector<Batch> sending_;  // open_ while it is being sent (keeps both capacities)
  std::unordered_map<std::string, size_t> openIndex_;
  std::string identity_;  // scratch for openIndex_ lookups
  // Sent and not answered yet, by the id each EVALSHA carries as its privdata.
  std::unordered_map<uint64_t, Batch> inflight_;
  uint64_t nextBatch_ = 1;
  // False once closed; answerAll() holds a copy to notice a callback that closed or
  // destroyed the limiter.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  core::UvHandle<uv_timer_t> deadlineTimer_;
  core::UvHandle<uv_timer_t> connectTimer_;  // reconnect backoff, or connect timeout while connecting
  // Sends the open batches at the end of the iteration; the idle handle keeps the loop from
  // blocking in between when a batch was opened outside the poll phase.
  core::UvHandle<uv_check_t> flushCheck_;
  core::UvHandle<uv_idle_t> flushIdle_;

  Impl(uv_loop_t* loop, const config::RedisConfig& config)
      : loop_(loop), config_(config), name_(config.host + ":" + std::to_string(config.port)) {}

  // ---- connection ------------------------------------------------------------------------

  void start() {
    if (state_ != State::Idle) return;
    deadlineTimer_ = core::UvHandle<uv_timer_t>(loop_, this, uv_timer_init);
    connectTimer_ = core::UvHandle<uv_timer_t>(loop_, this, uv_timer_init);
    flushCheck_ = core::UvHandle<uv_check_t>(loop_, this, uv_check_init);
    flushIdle_ = core::UvHandle<uv_idle_t>(loop_, this, uv_idle_init);
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
      core::Decimal db(config_.db);
      const char* argv[] = {"SELECT", db.text.data()};
      const size_t lens[] = {6, db.size};
      redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{0}), 2, argv, lens);
    }
    const char* argv[] = {"SCRIPT", "LOAD", kScript.data()};
    const size_t lens[] = {6, 4, kScript.size()};
    redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{1}), 3, argv, lens);
    uv_timer_start(connectTimer_.get(), onConnectTimeout, kConnectTimeoutMs, 0);
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
    uv_timer_start(connectTimer_.get(), onReconnectTimer, backoffMs_, 0);
    backoffMs_ = std::min(backoffMs_ * 2, kMaxBackoffMs);
    answerAll(dropAllPending(), [](size_t) { return std::nullopt; });
  }

  void handshakeComplete() {
    handshakeDone_ = true;
    uv_timer_stop(connectTimer_.get());
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

  bool acceptsDecisions() const { return ctx_ && (state_ == State::Up || state_ == State::Connecting); }

  Handle decide(std::string_view key, const config::RateLimitSpec& spec, Callback callback) {
    if (!acceptsDecisions()) {
      callback(std::nullopt);
      return 0;
    }
    const Handle handle = nextHandle_++;
    pending_.emplace(handle, std::move(callback));
    openBatchFor(key, spec).handles.push_back(handle);
    const uint64_t at = uv_now(loop_) + static_cast<uint64_t>(std::max<int64_t>(0, config_.timeout.count()));
    deadlines_.push_back({at, handle});
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(deadlineTimer_.get()))) armDeadlineTimer();
    return handle;
  }

  Batch& openBatchFor(std::string_view key, const config::RateLimitSpec& spec) {
    const int64_t period = spec.period.count();
    identity_.assign(key);
    identity_.push_back('\0');
    identity_.push_back(static_cast<char>(spec.algorithm));
    identity_.append(reinterpret_cast<const char*>(&spec.requests), sizeof spec.requests);
    identity_.append(reinterpret_cast<const char*>(&period), sizeof period);
    identity_.append(reinterpret_cast<const char*>(&spec.burst), sizeof spec.burst);
    if (auto it = openIndex_.find(identity_);
        it != openIndex_.end() && open_[it->second].handles.size() < kMaxBatch) {
      return open_[it->second];
    }
    if (open_.empty()) {
      uv_check_start(flushCheck_.get(), onFlush);
      uv_idle_start(flushIdle_.get(), [](uv_idle_t*) {});
    }
    Batch& batch = open_.emplace_back();
    batch.key.reserve(key.size() + 6);
    batch.key.append("{fg:").append(key).append("}");
    batch.spec = spec;
    openIndex_.insert_or_assign(identity_, open_.size() - 1);
    return batch;
  }

  static void onFlush(uv_check_t* check) {
    auto* self = static_cast<Impl*>(check->data);
    if (self) self->flush();
  }

  void flush() {
    uv_check_stop(flushCheck_.get());
    uv_idle_stop(flushIdle_.get());
    sending_.swap(open_);
    openIndex_.clear();
    std::vector<Handle> failed;
    for (Batch& batch : sending_) {
      // Requests that went away before their batch left cost no token.
      std::erase_if(batch.handles, [this](Handle h) { return !pending_.contains(h); });
      if (batch.handles.empty()) continue;
      const uint64_t id = nextBatch_++;
      if (acceptsDecisions() && send(id, batch)) {
        inflight_.emplace(id, std::move(batch));
        continue;
      }
      failed.insert(failed.end(), batch.handles.begin(), batch.handles.end());
    }
    sending_.clear();
    answerAll(failed, [](size_t) { return std::nullopt; });
  }

  // Sends EVALSHA (or EVAL before the first SCRIPT LOAD answered, which loads it as well).
  bool send(uint64_t id, const Batch& batch) {
    const config::RateLimitSpec& spec = batch.spec;
    core::Decimal requests(spec.requests);
    core::Decimal period(static_cast<uint64_t>(std::max<int64_t>(1, spec.period.count())));
    core::Decimal burst(spec.burst);
    core::Decimal count(batch.handles.size());
    const char* alg = algorithmArg(spec.algorithm);
    const bool bySha = !sha_.empty();
    const char* argv[] = {bySha ? "EVALSHA" : "EVAL",
                          bySha ? sha_.c_str() : kScript.data(),
                          "1",
                          batch.key.c_str(),
                          alg,
                          requests.text.data(),
                          period.text.data(),
                          burst.text.data(),
                          count.text.data()};
    const size_t lens[] = {bySha ? size_t{7} : size_t{4},
                           bySha ? sha_.size() : kScript.size(),
                           1,
                           batch.key.size(),
                           2,
                           requests.size,
                           period.size,
                           burst.size,
                           count.size};
    return redisAsyncCommandArgv(ctx_, onDecisionReply, reinterpret_cast<void*>(static_cast<uintptr_t>(id)),
                                 9, argv, lens) == REDIS_OK;
  }

  void armDeadlineTimer() {
    if (deadlines_.empty()) return;
    const uint64_t now = uv_now(loop_);
    const uint64_t at = deadlines_.front().at;
    uv_timer_start(deadlineTimer_.get(), onDeadline, at > now ? at - now : 0, 0);
  }

  static void onDeadline(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    if (!self) return;
    const uint64_t now = uv_now(self->loop_);
    std::vector<Handle> expired;
    while (!self->deadlines_.empty() && self->deadlines_.front().at <= now) {
      if (self->pending_.contains(self->deadlines_.front().handle))
        expired.push_back(self->deadlines_.front().handle);
      self->deadlines_.pop_front();
    }
    self->armDeadlineTimer();
    self->answerAll(expired, [](size_t) { return std::nullopt; });
  }

  // Removes a pending decision and hands back its callback (empty when unknown: timed out,
  // cancelled, or already failed).
  Callback take(Handle handle) {
    auto it = pending_.find(handle);
    if (it == pending_.end()) return {};
    Callback callback = std::move(it->second);
    pending_.erase(it);
    if (pending_.empty()) {
      deadlines_.clear();
      uv_timer_stop(deadlineTimer_.get());
    }
    return callback;
  }

  // Forgets every batch and deadline and hands back the handles still waiting, for
  // answerAll().
  std::vector<Handle> dropAllPending() {
    std::vector<Handle> handles;
    handles.reserve(pending_.size());
    for (const auto& entry : pending_) handles.push_back(entry.first);
    deadlines_.clear();
    open_.clear();
    openIndex_.clear();
    inflight_.clear();
    if (deadlineTimer_) uv_timer_stop(deadlineTimer_.get());
    return handles;
  }

  // Calls back every handle that is still pending with resultFor(its index). Each callback
  // is taken out just before it runs: one may cancel later handles, or close or destroy the
  // limiter, and then the rest are dropped without touching it.
  template <typename ResultFor>
  void answerAll(const std::vector<Handle>& handles, ResultFor resultFor) {
    const std::shared_ptr<bool> alive = alive_;
    for (size_t i = 0; i < handles.size() && *alive; ++i) {
      if (Callback callback = take(handles[i])) callback(resultFor(i));
    }
  }

  // The script's answer for a whole batch: {admitted, limit, remaining, reset_us, retry_ms,
  // step_us} (see kScript).
  struct BatchAnswer {
    uint64_t admitted, limit;
    int64_t remaining;
    uint64_t resetUs, retryMs, stepUs;

    // The decision for the i-th request of the batch (from 0).
    RateLimitDecision decisionFor(size_t i) const {
      RateLimitDecision d;
      d.limit = limit;
      if (i < admitted) {
        const uint64_t later = admitted - 1 - i;  // admitted requests after this one
        d.allowed = true;
        d.remaining = static_cast<uint64_t>(std::max<int64_t>(0, remaining + static_cast<int64_t>(later)));
        const uint64_t earlier = std::min(resetUs, stepUs * later);
        d.resetMs = (resetUs - earlier + 999) / 1000;
      } else {
        d.allowed = false;
        d.remaining = 0;
        d.resetMs = (resetUs + 999) / 1000;
        d.retryAfterMs = retryMs;
      }
      return d;
    }
  };

  static std::optional<BatchAnswer> parseAnswer(const redisReply* reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 6) return std::nullopt;
    std::array<int64_t, 6> v{};
    for (size_t i = 0; i < v.size(); ++i) {
      const redisReply* e = reply->element[i];
      if (e->type != REDIS_REPLY_INTEGER || (e->integer < 0 && i != 2)) return std::nullopt;
      v[i] = e->integer;
    }
    return BatchAnswer{static_cast<uint64_t>(v[0]), static_cast<uint64_t>(v[1]), v[2],
                       static_cast<uint64_t>(v[3]), static_cast<uint64_t>(v[4]), static_cast<uint64_t>(v[5])};
  }

  static void onDecisionReply(redisAsyncContext* ac, void* r, void* privdata) {
    Impl* self = owner(ac);
    if (!self) return;
    auto* reply = static_cast<redisReply*>(r);
    const auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(privdata));
    if (!reply) {
      self->contextGone(ac, "connection closed");
      return;
    }
    auto it = self->inflight_.find(id);
    if (it == self->inflight_.end()) return;
    Batch& batch = it->second;
    if (reply->type == REDIS_REPLY_ERROR &&
        std::string_view(reply->str, reply->len).starts_with("NOSCRIPT") && !batch.retried) {
      // Redis lost its script cache (restart, SCRIPT FLUSH, failover). Load it again and
      // retry once; both go out on this connection in order, so the retry finds it.
      batch.retried = true;
      const char* argv[] = {"SCRIPT", "LOAD", kScript.data()};
      const size_t lens[] = {6, 4, kScript.size()};
      if (redisAsyncCommandArgv(ac, onHandshakeReply, reinterpret_cast<void*>(uintptr_t{2}), 3, argv, lens) ==
              REDIS_OK &&
          self->send(id, batch)) {
        return;
      }
    }
    std::optional<BatchAnswer> answer;
    if (reply->type == REDIS_REPLY_ERROR) {
      self->logReplyError(std::string("rate-limit script: ") + reply->str);
    } else {
      answer = parseAnswer(reply);
      if (!answer) self->logReplyError("rate-limit script: unexpected reply");
    }
    // Requests that timed out or were cancelled after the batch left are skipped; Redis
    // counted them all the same.
    const std::vector<Handle> handles = std::move(batch.handles);
    self->inflight_.erase(it);
    self->answerAll(handles, [&answer](size_t i) -> std::optional<RateLimitDecision> {
      if (!answer) return std::nullopt;
      return answer->decisionFor(i);
    });
  }

  void cancel(Handle handle) { take(handle); }

  void close() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    *alive_ = false;
    // Dropped, not called: the owner is going away.
    pending_.clear();
    deadlines_.clear();
    open_.clear();
    openIndex_.clear();
    inflight_.clear();
    dropContext();
    deadlineTimer_.reset();
    connectTimer_.reset();
    flushCheck_.reset();
    flushIdle_.reset();
  }
};

RedisRateLimiter::RedisRateLimiter(uv_loop_t* loop, const config::RedisConfig& config)
    : impl_(std::make_unique<Impl>(loop, config)) {}

RedisRateLimiter::~RedisRateLimiter() {
  close();
}

void RedisRateLimiter::start() {
  impl_->start();
}

RedisRateLimiter::Handle RedisRateLimiter::decide(std::string_view key, const config::RateLimitSpec& spec,
                                                  Callback callback) {
  return impl_->decide(key, spec, std::move(callback));
}

void RedisRateLimiter::cancel(Handle handle) {
  impl_->cancel(handle);
}

bool RedisRateLimiter::connected() const {
  return impl_->state_ == Impl::State::Up;
}

void RedisRateLimiter::close() {
  impl_->close();
}

}  // namespace flowguard::filters
