// Rate-limit decisions in Redis, shared by every gateway replica. One instance per worker:
// its hiredis async connection is attached to the worker's uv_loop (hiredis's libuv
// adapter), so nothing ever blocks the loop. Decisions are batched: the requests of one key
// that arrive in the same loop iteration are decided together, in order, by one EVALSHA of
// a Lua script at the end of the iteration (loaded once with SCRIPT LOAD; NOSCRIPT answered
// by loading it again), and batches of all keys are pipelined on the one connection. Keys
// carry a hash tag ({fg:...}) so it works on Redis Cluster, and an expiry so idle keys
// vanish. A request cancelled before its batch is sent costs no token.
// hiredis 0.14 has no command timeout: every pending decision has its own deadline, and
// when it passes the caller hears "unavailable" at once (the late reply is ignored).
// A lost connection is re-established with exponential backoff (100 ms .. 5 s).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <uv.h>

#include "config/config.h"
#include "filters/rate_limit_algorithms.h"

namespace flowguard::filters {

class RedisRateLimiter {
 public:
  // Called exactly once per decide() that returned a handle, unless cancelled first:
  // a decision, or nullopt when Redis did not answer in time / is down.
  using Callback = std::function<void(std::optional<RateLimitDecision>)>;
  using Handle = uint64_t;  // 0 = none

  RedisRateLimiter(uv_loop_t* loop, const config::RedisConfig& config);
  ~RedisRateLimiter();  // closes the connection; pending callbacks are dropped, not called
  RedisRateLimiter(const RedisRateLimiter&) = delete;
  RedisRateLimiter& operator=(const RedisRateLimiter&) = delete;

  // Starts connecting (call once, on the loop's thread).
  void start();
  // Asks Redis. When Redis is known to be down, calls back with nullopt before returning
  // and returns 0. Otherwise returns a handle for cancel().
  Handle decide(std::string_view key, const config::RateLimitSpec& spec, Callback callback);
  // The request went away: its callback will not be called.
  void cancel(Handle handle);
  bool connected() const;
  // Closes every handle; after it the loop can end. Idempotent.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowguard::filters
