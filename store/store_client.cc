#include "store/store_client.h"

#include <mutex>
#include <utility>

namespace flowguard::store {

namespace {

constexpr uint64_t kLogFlushMs = 100;
constexpr size_t kLogFlushRecords = 256;

}  // namespace

// Shared by the client (on its loop) and by replies running on the store thread.
struct StoreClient::Mailbox {
  std::mutex mutex;
  uv_async_t* async = nullptr;  // null once the client closed
  std::vector<std::pair<Handle, StoreOutcome>> done;
};

StoreClient::StoreClient(uv_loop_t* loop, StoreService& service)
    : loop_(loop), service_(service), mailbox_(std::make_shared<Mailbox>()) {
  async_ = core::UvHandle<uv_async_t>(loop_, this, uv_async_init, onAsync);
  // An idle client must not keep its loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(async_.get()));
  mailbox_->async = async_.get();
  flushTimer_ = core::UvHandle<uv_timer_t>(loop_, this, uv_timer_init);
}

StoreClient::~StoreClient() {
  close();
}

StoreClient::Handle StoreClient::submit(StoreService::Work work, Done done, bool touchesKeys) {
  if (closed_) {
    done(StoreOutcome{StoreOutcome::Status::Unavailable, {}, "the gateway is shutting down"});
    return 0;
  }
  const Handle handle = nextHandle_++;
  pending_.emplace(handle, std::move(done));
  std::weak_ptr<Mailbox> weak = mailbox_;
  service_.submit(
      std::move(work),
      [weak, handle](StoreOutcome outcome) {
        auto mailbox = weak.lock();
        if (!mailbox) return;
        std::lock_guard lock(mailbox->mutex);
        if (mailbox->async == nullptr) return;
        mailbox->done.emplace_back(handle, std::move(outcome));
        uv_async_send(mailbox->async);
      },
      touchesKeys);
  return handle;
}

void StoreClient::cancel(Handle handle) {
  pending_.erase(handle);
}

void StoreClient::onAsync(uv_async_t* async) {
  if (auto* self = static_cast<StoreClient*>(async->data)) self->deliver();
}

void StoreClient::deliver() {
  std::vector<std::pair<Handle, StoreOutcome>> done;
  {
    std::lock_guard lock(mailbox_->mutex);
    done.swap(mailbox_->done);
  }
  for (auto& [handle, outcome] : done) {
    auto it = pending_.find(handle);
    if (it == pending_.end()) continue;  // cancelled
    Done callback = std::move(it->second);
    pending_.erase(it);
    callback(std::move(outcome));
    if (closed_) return;  // a callback closed the client
  }
}

void StoreClient::log(LogRecord record) {
  if (closed_) return;
  logs_.push_back(std::move(record));
  if (logs_.size() >= kLogFlushRecords) {
    flushLogs();
  } else if (logs_.size() == 1) {
    uv_timer_start(
        flushTimer_.get(),
        [](uv_timer_t* t) {
          if (auto* self = static_cast<StoreClient*>(t->data)) self->flushLogs();
        },
        kLogFlushMs, 0);
  }
}

void StoreClient::flushLogs() {
  if (flushTimer_) uv_timer_stop(flushTimer_.get());
  if (logs_.empty()) return;
  service_.appendLogs(logs_);  // hands the vector over whole
  logs_.reserve(kLogFlushRecords);
}

void StoreClient::close() {
  if (closed_) return;
  flushLogs();
  closed_ = true;
  {
    std::lock_guard lock(mailbox_->mutex);
    mailbox_->async = nullptr;
    mailbox_->done.clear();
  }
  pending_.clear();
  async_.reset();
  flushTimer_.reset();
}

}  // namespace flowguard::store
