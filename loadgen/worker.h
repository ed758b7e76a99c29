// One load-generating thread: its own uv_loop, its share of the connections and of the
// request schedule, and its own ThreadStats. Workers share nothing while running; the main
// thread reads their single-writer counters for the live output and merges them after join.
//
// Schedule. Closed loop: an idle connection gets the next request at once. Open loop (rate R
// in total over T threads): the global request k is due at start + k/R and thread i owns the
// k with k % T == i, so the threads together keep exactly the global schedule. A request is
// handed to the first idle connection once due; when none is idle it waits, and its latency
// still counts from the due time (the coordinated-omission correction).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/uv_handle.h"
#include "loadgen/connection.h"
#include "loadgen/key_picker.h"
#include "loadgen/response_log.h"
#include "loadgen/run_stats.h"

namespace flowguard::loadgen {

struct WorkerPlan {
  unsigned index = 0;  // this thread, 0..threads-1
  unsigned threads = 1;
  unsigned connections = 1;  // this thread's share
  sockaddr_storage address{};
  uint64_t startNs = 0;             // uv_hrtime() at which the schedule starts
  uint64_t measureStartNs = 0;      // after the warm-up; requests sent before are not recorded
  uint64_t endNs = 0;               // duration mode: nothing new is sent from here; 0 in -n mode
  uint64_t budget = UINT64_MAX;     // closed loop -n: this thread's measured requests
  double rate = 0;                  // open loop: total requests/second; 0 = closed loop
  uint64_t firstMeasuredIndex = 0;  // open loop: k below it are warm-up
  uint64_t endIndex = UINT64_MAX;   // open loop -n: k from here are not sent
  uint64_t timeoutNs = 10'000'000'000ULL;
  bool headRequests = false;
  const std::vector<std::string>* requests = nullptr;  // one per key, or one without keys
  KeyDist keyDist = KeyDist::RoundRobin;
  double zipfExponent = 1.0;
  size_t keyCount = 0;
  ResponseLog* responseLog = nullptr;  // --response-log / config mode; shared by the workers
};

class Worker {
 public:
  Worker(WorkerPlan plan, ThreadStats& stats);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the loop on the calling thread until the schedule is done and every in-flight
  // request answered or timed out.
  void run();
  // Any thread: stop sending new requests (in-flight ones still finish). Only after run()
  // has started and before it returned (the main thread checks running()).
  void stop();
  bool running() const { return running_.load(std::memory_order_acquire); }
  bool done() const { return done_.load(std::memory_order_acquire); }

  // For Connection (loop thread).
  const WorkerPlan& plan() const { return plan_; }
  const std::string& requestBytes(int key) const;
  void onIdle(Connection& connection);
  void onConnectFailed();
  void onResponse(const PendingRequest& request, int status, uint64_t nowNs);
  void onFailure(const PendingRequest& request, bool timeout, uint64_t nowNs);
  void onBytes(const PendingRequest& request, size_t n);
  void onReconnect() { ++stats_.reconnects; }
  bool finishing() const { return finishing_; }
  bool exhausted() const { return exhausted_; }

 private:
  static void onTick(uv_timer_t* timer);
  static void onEnd(uv_timer_t* timer);
  static void onStop(uv_async_t* async);

  // The next request if one is due at `nowNs` (sets exhausted_ when none ever will be).
  bool nextRequest(uint64_t nowNs, PendingRequest& out);
  uint64_t dueOf(uint64_t k) const;
  void sendOn(Connection& connection, const PendingRequest& request, uint64_t nowNs);
  void dispatch();
  void armTick(uint64_t nowNs);
  void endSchedule();
  void maybeFinish();
  // A measured request ended (status 0: no response): into the stats and the response log.
  void recordMeasured(const PendingRequest& request, int status, uint64_t nowNs);

  WorkerPlan plan_;
  ThreadStats& stats_;
  KeyPicker picker_;
  uv_loop_t loop_{};
  core::UvHandle<uv_timer_t> tick_;
  core::UvHandle<uv_timer_t> end_;
  core::UvHandle<uv_async_t> stop_;  // under stopMutex_: stop() sends to it from other threads
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;  // may hold stale entries; state() decides
  uint64_t nextJ_ = 0;             // open loop: next k is index + nextJ_ * threads
  uint64_t busy_ = 0;
  bool exhausted_ = false;
  bool finishing_ = false;
  // This worker's response-log lines not yet written out (see response_log.h).
  std::string responseLogBuffer_;
  // Adds to uv_hrtime() to give the wall-clock time (ns since the Unix epoch), for the log.
  uint64_t unixOffsetNs_ = 0;
  // stop() may race the loop's end; the lock (taken a few times per run at most) keeps
  // uv_async_send off a closed handle.
  std::mutex stopMutex_;
  std::atomic<bool> running_{false};
  std::atomic<bool> done_{false};
};

}  // namespace flowguard::loadgen
