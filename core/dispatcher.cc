#include "core/dispatcher.h"

namespace flowguard::core {

Dispatcher::Dispatcher(uv_loop_t* loop) : loop_(loop), check_(new uv_check_t), idle_(new uv_idle_t) {
  uv_check_init(loop_, check_);
  check_->data = this;
  uv_check_start(check_, [](uv_check_t* h) { static_cast<Dispatcher*>(h->data)->clearDeferred(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  uv_idle_init(loop_, idle_);
  idle_->data = this;
}

Dispatcher::~Dispatcher() {
  clearDeferred();
  close();
}

void Dispatcher::deferDelete(std::unique_ptr<DeferredDeletable> object) {
  if (toDelete_.empty() && idle_ != nullptr) {
    // An active idle handle makes the next poll non-blocking, so the check callback
    // runs soon even when no I/O arrives.
    uv_idle_start(idle_, [](uv_idle_t* h) { uv_idle_stop(h); });
  }
  toDelete_.push_back(std::move(object));
}

void Dispatcher::clearDeferred() {
  // Destructors may defer more objects: swap until nothing is left.
  while (!toDelete_.empty()) {
    std::vector<std::unique_ptr<DeferredDeletable>> batch;
    batch.swap(toDelete_);
    batch.clear();
  }
}

void Dispatcher::close() {
  closeAndDelete(check_);
  check_ = nullptr;
  closeAndDelete(idle_);
  idle_ = nullptr;
}

}  // namespace flowguard::core
