#include "core/dispatcher.h"

namespace flowguard::core {

Dispatcher::Dispatcher(uv_loop_t* loop)
    : loop_(loop), check_(loop, this, uv_check_init), idle_(loop, this, uv_idle_init) {
  uv_check_start(check_.get(), [](uv_check_t* h) { static_cast<Dispatcher*>(h->data)->onCheck(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(check_.get()));
}

Dispatcher::~Dispatcher() {
  clearDeferred();
  close();
}

void Dispatcher::wakeNextIteration() {
  // An active idle handle makes the next poll non-blocking, so the check callback runs
  // soon even when no I/O arrives (work scheduled from a timer, before the poll phase).
  if (idle_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(idle_.get()))) {
    uv_idle_start(idle_.get(), [](uv_idle_t* h) { uv_idle_stop(h); });
  }
}

void Dispatcher::deferDelete(std::unique_ptr<DeferredDeletable> object) {
  wakeNextIteration();
  toDelete_.push_back(std::move(object));
}

void Dispatcher::scheduleFlush(EndOfIterationFlush* target) {
  wakeNextIteration();
  toFlush_.push_back(target);
}

void Dispatcher::cancelFlush(EndOfIterationFlush* target) {
  for (auto* list : {&toFlush_, &flushing_}) {
    for (auto& entry : *list) {
      if (entry == target) entry = nullptr;
    }
  }
}

void Dispatcher::onCheck() {
  // Flushing may schedule more (a pipelined response): loop until nothing is left.
  while (!toFlush_.empty()) {
    flushing_.swap(toFlush_);  // both keep their capacity: no allocation per iteration
    for (auto* target : flushing_) {
      if (target != nullptr) target->flushNow();
    }
    flushing_.clear();
  }
  clearDeferred();
}

void Dispatcher::clearDeferred() {
  // Destructors may defer more objects: swap until nothing is left.
  while (!toDelete_.empty()) {
    deleting_.swap(toDelete_);
    deleting_.clear();
  }
}

void Dispatcher::close() {
  check_.reset();
  idle_.reset();
}

}  // namespace flowguard::core
