#include "gateway/config_watcher.h"

#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "core/dispatcher.h"

namespace flowguard::gateway {

ConfigWatcher::ConfigWatcher(uv_loop_t* loop, std::string path, std::chrono::milliseconds debounce,
                             std::function<void()> onChange)
    : loop_(loop), debounce_(debounce), onChange_(std::move(onChange)) {
  auto slash = path.rfind('/');
  directory_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  name_ = slash == std::string::npos ? path : path.substr(slash + 1);
}

ConfigWatcher::~ConfigWatcher() {
  close();
}

bool ConfigWatcher::start() {
  event_ = new uv_fs_event_t;
  uv_fs_event_init(loop_, event_);
  event_->data = this;
  int rc = uv_fs_event_start(event_, &ConfigWatcher::onEvent, directory_.c_str(), 0);
  if (rc != 0) {
    error_ = fmt::format("cannot watch {}: {}", directory_, uv_strerror(rc));
    core::closeAndDelete(event_);
    event_ = nullptr;
    return false;
  }
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  return true;
}

void ConfigWatcher::close() {
  if (event_ != nullptr) {
    uv_fs_event_stop(event_);
    core::closeAndDelete(event_);
    event_ = nullptr;
  }
  if (timer_ != nullptr) {
    uv_timer_stop(timer_);
    core::closeAndDelete(timer_);
    timer_ = nullptr;
  }
}

void ConfigWatcher::onEvent(uv_fs_event_t* handle, const char* filename, int, int status) {
  auto* self = static_cast<ConfigWatcher*>(handle->data);
  if (status < 0 || self->timer_ == nullptr) return;
  // No name: the kernel's queue overflowed, so anything may have changed.
  const std::string_view name =
      filename == nullptr ? std::string_view(self->name_) : std::string_view(filename);
  if (name != self->name_ && !name.starts_with("..")) return;  // other files in the directory
  // The loop's clock may be stale after a long callback: the quiet time counts from now.
  uv_update_time(self->loop_);
  uv_timer_start(self->timer_, &ConfigWatcher::onSettled, static_cast<uint64_t>(self->debounce_.count()), 0);
}

void ConfigWatcher::onSettled(uv_timer_t* timer) {
  static_cast<ConfigWatcher*>(timer->data)->onChange_();
}

}  // namespace flowguard::gateway
