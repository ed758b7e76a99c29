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
    stopAsync_ = UvHandle<uv_async_t>(&loop_, this, uv_async_init, &Worker::onStop);
    tasksAsync_ = UvHandle<uv_async_t>(&loop_, this, uv_async_init, &Worker::onTasks);
    drainTimer_ = UvHandle<uv_timer_t>(&loop_, this, uv_timer_init);
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
  if (onExit_) onExit_();
}

void Worker::requestStop(std::chrono::milliseconds drainTimeout) {
  drainTimeoutMs_.store(drainTimeout.count());
  std::lock_guard lock(tasksMutex_);  // the loop (and so the async handle) is still alive
  if (accepting_ && thread_.joinable()) uv_async_send(stopAsync_.get());
}

void Worker::post(std::function<void(WorkerState&)> task) {
  std::lock_guard lock(tasksMutex_);
  if (!accepting_ || !thread_.joinable()) return;
  tasks_.push_back(std::move(task));
  uv_async_send(tasksAsync_.get());
}

void Worker::onTasks(uv_async_t* async) {
  auto* self = static_cast<Worker*>(async->data);
  std::vector<std::function<void(WorkerState&)>> tasks;
  {
    std::lock_guard lock(self->tasksMutex_);
    tasks.swap(self->tasks_);
  }
  for (auto& task : tasks) {
    if (self->finished_) break;
    task(*self->state_);
  }
}

void Worker::onStop(uv_async_t* async) {
  auto* self = static_cast<Worker*>(async->data);
  if (self->finished_) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(self->drainTimeoutMs_.load());
  // A second request may only bring the end closer.
  if (self->draining_ && deadline >= self->drainDeadline_) return;
  self->drainDeadline_ = deadline;
  if (!self->draining_) {
    self->draining_ = true;
    self->state_->drain();
  }
  uv_timer_start(self->drainTimer_.get(), &Worker::onDrainTick, 0, 20);
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
  {
    // The async handles close below: nobody may wake them from now on.
    std::lock_guard lock(tasksMutex_);
    accepting_ = false;
    tasks_.clear();
  }
  state_->closeAll();
  stopAsync_.reset();
  tasksAsync_.reset();
  drainTimer_.reset();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace flowguard::core
