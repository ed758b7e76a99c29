// A worker thread: one uv_loop, and the per-worker state the gateway builds on it
// (listeners, connections, upstream pools). Nothing in that state is shared with other
// threads, so the request path takes no locks.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
  // Thread-safe: drain, then stop after at most drainTimeout. A second call may shorten
  // the time left (0: close everything now).
  void requestStop(std::chrono::milliseconds drainTimeout);
  // Thread-safe: runs `task` on the worker's thread, with its state (tasks run in the order
  // posted). Dropped when the worker has already stopped.
  void post(std::function<void(WorkerState&)> task);
  // Called on the worker's thread when its loop is done and its state destroyed (set
  // before start()): the main thread's cue that this worker has stopped.
  void onExit(std::function<void()> callback) { onExit_ = std::move(callback); }
  void join();

 private:
  void run();
  static void onStop(uv_async_t* async);
  static void onTasks(uv_async_t* async);
  static void onDrainTick(uv_timer_t* timer);
  void finish();

  unsigned index_;
  Setup setup_;
  std::thread thread_;
  uv_loop_t loop_;
  // Sent to from other threads, under tasksMutex_ while accepting_ (finish() closes them).
  UvHandle<uv_async_t> stopAsync_;
  UvHandle<uv_async_t> tasksAsync_;
  UvHandle<uv_timer_t> drainTimer_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<WorkerState> state_;
  std::function<void()> onExit_;
  std::atomic<int64_t> drainTimeoutMs_{5000};
  std::chrono::steady_clock::time_point drainDeadline_;
  bool draining_ = false;
  bool finished_ = false;
  // Tasks from other threads. The lock is taken only by post() and once per wake-up of
  // the worker: never on the request path.
  std::mutex tasksMutex_;
  std::vector<std::function<void(WorkerState&)>> tasks_;
  bool accepting_ = true;  // false once the loop is done: later tasks are dropped
};

}  // namespace flowguard::core
