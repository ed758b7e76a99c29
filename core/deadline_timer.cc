#include "core/deadline_timer.h"

namespace flowguard::core {

void DeadlineTimer::init(uv_loop_t* loop, void* owner, Callback onExpired) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  owner_ = owner;
  onExpired_ = onExpired;
}

void DeadlineTimer::set(uint64_t milliseconds) {
  uint64_t now = uv_now(timer_.loop);
  // +1 keeps 0 free to mean "no deadline" even when the loop clock reads 0.
  deadline_ = now + milliseconds + 1;
  if (wakeAt_ == 0 || wakeAt_ > deadline_) {
    wakeAt_ = deadline_;
    uv_timer_start(&timer_, &DeadlineTimer::onFire, milliseconds, 0);
  }
}

void DeadlineTimer::onFire(uv_timer_t* timer) {
  auto* self = static_cast<DeadlineTimer*>(timer->data);
  self->wakeAt_ = 0;
  if (self->deadline_ == 0) return;
  uint64_t now = uv_now(timer->loop) + 1;
  if (now < self->deadline_) {
    self->wakeAt_ = self->deadline_;
    uv_timer_start(timer, &DeadlineTimer::onFire, self->deadline_ - now, 0);
    return;
  }
  self->deadline_ = 0;
  self->onExpired_(self->owner_);
}

void DeadlineTimer::close(Callback onClosed) {
  onClosed_ = onClosed;
  deadline_ = 0;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* handle) {
    auto* self = static_cast<DeadlineTimer*>(handle->data);
    self->onClosed_(self->owner_);
  });
}

}  // namespace flowguard::core
