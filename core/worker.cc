#include "core/worker.h"

#include <pthread.h>
#include <future>

#include <fmt/format.h>

namespace flowguard::core {

Worker::Worker(unsigned index, Setup setup) : index_(index), setup_(std::move(setup)) {}

Worker::~Worker() {
  join();
}

bool Worker::start(std::string& error) {
  std::promise<std::string> ready;
  auto readyFuture = ready.get_future();
  thread_ = std::thread([this, &ready] {
    // Named for top -H, perf and bench/cpu_per_request.py (at most 15 characters).
    pthread_setname_np(pthread_self(), ("fg-worker-" + std::to_string(index_)).c_str());
    uv_loop_init(&loop_);
    dispatcher_ = std::make_unique<Dispatcher>(&loop_);
    std::string setupError;
    state_ = setup_(*dispatcher_, setupError);
    if (!state_) {
      if (setupError.empty()) setupError = "worker setup failed";
      dispatcher_.reset();
      uv_run(&loop_, UV_RUN_DEFAULT);  // let closed handles finish
      uv_loop_close(&loop_);
      ready.set_value(setupError);
      return;
    }
    uv_async_init(&loop_, &stopAsync_, &Worker::onStop);
    stopAsync_.data = this;
    uv_timer_init(&loop_, &drainTimer_);
    drainTimer_.data = this;
    ready.set_value("");
    run();
  });
  error = readyFuture.get();
  if (!error.empty()) {
    thread_.join();
    error = fmt::format("worker {}: {}", index_, error);
    return false;
  }
  return true;
}

void Worker::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  dispatcher_->clearDeferred();  // parked chains point into the state: free them first
  state_.reset();
  dispatcher_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void Worker::requestStop(std::chrono::milliseconds drainTimeout) {
  drainTimeout_ = drainTimeout;
  if (thread_.joinable()) uv_async_send(&stopAsync_);
}

void Worker::onStop(uv_async_t* async) {
  auto* self = static_cast<Worker*>(async->data);
  if (self->finished_) return;
  self->drainDeadline_ = std::chrono::steady_clock::now() + self->drainTimeout_;
  self->state_->drain();
  uv_timer_start(&self->drainTimer_, &Worker::onDrainTick, 0, 20);
}

void Worker::onDrainTick(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->data);
  if (self->state_->drained() || std::chrono::steady_clock::now() >= self->drainDeadline_) {
    self->finish();
  }
}

void Worker::finish() {
  if (finished_) return;
  finished_ = true;
  state_->closeAll();
  uv_close(reinterpret_cast<uv_handle_t*>(&stopAsync_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drainTimer_), nullptr);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace flowguard::core
