// One way to own a libuv handle. UvHandle<T> is the move-only owner of a handle it allocated:
// libuv needs a handle's memory until the close callback has run, so reset() and the
// destructor close the handle and free it in that callback, never at once (as CMake's
// cmUVHandlePtr does). `data` is cleared first: nothing reaches the old owner afterwards.
//
//   core::UvHandle<uv_timer_t> timer_{loop, this, uv_timer_init};
//   uv_timer_start(timer_.get(), &onTick, 1000, 1000);
//
// The one other idiom is for handles embedded in a per-connection object (a connection's
// socket and timer): they save allocations per connection, and their owner deletes itself once
// every one of its handles' close callbacks has run (DownstreamConnection::onOneHandleClosed).
#pragma once

#include <uv.h>

#include <utility>

namespace flowguard::core {

template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  // A new handle set up by `init(loop, handle, args...)` (uv_timer_init, uv_async_init,
  // uv_tcp_init...), with data = owner. When init fails there is no handle (check with
  // `if (handle)`; error() says why).
  template <class Init, class... Args>
  UvHandle(uv_loop_t* loop, void* owner, Init init, Args&&... args) : handle_(new T) {
    error_ = init(loop, handle_, std::forward<Args>(args)...);
    if (error_ != 0) {
      delete handle_;  // never initialised: nothing for uv_close to do
      handle_ = nullptr;
      return;
    }
    handle_->data = owner;
  }
  ~UvHandle() { reset(); }
  UvHandle(UvHandle&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), error_(std::exchange(other.error_, 0)) {}
  UvHandle& operator=(UvHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
      error_ = std::exchange(other.error_, 0);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  T* get() const { return handle_; }
  T* operator->() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }
  int error() const { return error_; }  // what init returned (0: fine)

  // Closes the handle (stopping it) and frees it in libuv's close callback; the owner may be
  // gone by then. Idempotent.
  void reset() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(handle_, nullptr)),
             [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
  }

 private:
  T* handle_ = nullptr;
  int error_ = 0;
};

}  // namespace flowguard::core
