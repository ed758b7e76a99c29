// One per event-loop thread: the loop itself plus deferred deletion.
//
// Why deferred deletion: an object must never be freed while one of its own callbacks is
// still on the stack (a filter that finishes a request from inside an upstream read
// callback). deferDelete() parks the object until the current loop iteration is over.
#pragma once

#include <memory>
#include <vector>

#include <uv.h>

#include "core/uv_handle.h"

namespace flowguard::core {

class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

// Something that batches output during one loop iteration and writes it at the end.
class EndOfIterationFlush {
 public:
  virtual ~EndOfIterationFlush() = default;
  virtual void flushNow() = 0;
};

class Dispatcher {
 public:
  // Uses `loop` (not owned). Must be constructed on the loop's thread.
  explicit Dispatcher(uv_loop_t* loop);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  uv_loop_t* loop() const { return loop_; }
  void deferDelete(std::unique_ptr<DeferredDeletable> object);
  // Frees everything parked so far (also run by the loop after each poll phase).
  void clearDeferred();

  // Calls target->flushNow() at the end of this loop iteration, before the loop waits
  // again. Lets a connection send a response head and the first body bytes in one write.
  // A target that dies first must cancelFlush() itself.
  void scheduleFlush(EndOfIterationFlush* target);
  void cancelFlush(EndOfIterationFlush* target);
  // Closes the dispatcher's own handle; call before the loop's final uv_run.
  void close();

 private:
  uv_loop_t* loop_;
  UvHandle<uv_check_t> check_;
  UvHandle<uv_idle_t> idle_;  // active only while objects wait, so the loop does not block on them
  void onCheck();
  void wakeNextIteration();

  std::vector<std::unique_ptr<DeferredDeletable>> toDelete_;
  std::vector<std::unique_ptr<DeferredDeletable>> deleting_;  // the batch being freed
  std::vector<EndOfIterationFlush*> toFlush_;
  std::vector<EndOfIterationFlush*> flushing_;  // the batch being flushed
};

}  // namespace flowguard::core
