// A worker thread: one uv_loop, and the per-worker state the gateway builds on it
// (listeners, connections, upstream pools). Nothing in that state is shared with other
// threads, so the request path takes no locks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <uv.h>

#include "core/dispatcher.h"

namespace flowguard::core {

// Everything a worker owns besides its loop. Methods run on the worker thread.
class WorkerState {
 public:
  virtual ~WorkerState() = default;
  // Stop accepting and let in-flight exchanges finish.
  virtual void drain() = 0;
  // True when no downstream connection is left.
  virtual bool drained() const = 0;
  // Close every remaining handle (connections, pools) now.
  virtual void closeAll() = 0;
};

class Worker {
 public:
  // Runs on the worker thread before its loop starts. Returns the state, or null with
  // `error` set (e.g. a listener could not bind).
  using Setup = std::function<std::unique_ptr<WorkerState>(Dispatcher&, std::string& error)>;

  Worker(unsigned index, Setup setup);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread and waits until setup is done. False (with error) when it failed.
  bool start(std::string& error);
  // Thread-safe: drain, then stop after at most drainTimeout.
  void requestStop(std::chrono::milliseconds drainTimeout);
  void join();

 private:
  void run();
  static void onStop(uv_async_t* async);
  static void onDrainTick(uv_timer_t* timer);
  void finish();

  unsigned index_;
  Setup setup_;
  std::thread thread_;
  uv_loop_t loop_;
  uv_async_t stopAsync_;
  uv_timer_t drainTimer_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<WorkerState> state_;
  std::chrono::milliseconds drainTimeout_{5000};
  std::chrono::steady_clock::time_point drainDeadline_;
  bool finished_ = false;
};

}  // namespace flowguard::core
