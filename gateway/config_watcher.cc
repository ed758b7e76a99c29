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
  event_ = core::UvHandle<uv_fs_event_t>(loop_, this, uv_fs_event_init);
  int rc = uv_fs_event_start(event_.get(), &ConfigWatcher::onEvent, directory_.c_str(), 0);
  if (rc != 0) {
    error_ = fmt::format("cannot watch {}: {}", directory_, uv_strerror(rc));
    event_.reset();
    return false;
  }
  timer_ = core::UvHandle<uv_timer_t>(loop_, this, uv_timer_init);
  return true;
}

void ConfigWatcher::close() {
  event_.reset();
  timer_.reset();
}

void ConfigWatcher::onEvent(uv_fs_event_t* handle, const char* filename, int, int status) {
  auto* self = static_cast<ConfigWatcher*>(handle->data);
  if (status < 0 || !self->timer_) return;
  // No name: the kernel's queue overflowed, so anything may have changed.
  const std::string_view name =
      filename == nullptr ? std::string_view(self->name_) : std::string_view(filename);
  if (name != self->name_ && !name.starts_with("..")) return;  // other files in the directory
  // The loop's clock may be stale after a long callback: the quiet time counts from now.
  uv_update_time(self->loop_);
  uv_timer_start(self->timer_.get(), &ConfigWatcher::onSettled,
                 static_cast<uint64_t>(self->debounce_.count()), 0);
}

void ConfigWatcher::onSettled(uv_timer_t* timer) {
  static_cast<ConfigWatcher*>(timer->data)->onChange_();
}

}  // namespace flowguard::gateway
