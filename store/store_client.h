// A worker's door to the store thread. Lives on one uv_loop and is used only from it.
//
// submit() runs a job on the store thread; its outcome comes back on this loop through a
// uv_async_t (a mailbox shared with the store thread, so a reply that arrives after the
// client closed is simply dropped). log() buffers request-log records and hands them to the
// store thread in batches, every 100 ms or every 256 records, so a request costs a vector
// push and no lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "core/uv_handle.h"
#include "store/store_service.h"

namespace flowguard::store {

class StoreClient {
 public:
  using Handle = uint64_t;  // 0 = none
  using Done = std::function<void(StoreOutcome)>;

  StoreClient(uv_loop_t* loop, StoreService& service);
  ~StoreClient();  // close()
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  // Runs `work` on the store thread; `done` is called later on this loop, exactly once
  // unless cancelled or the client closed first.
  Handle submit(StoreService::Work work, Done done, bool touchesKeys = false);
  void cancel(Handle handle);
  void log(LogRecord record);
  // Hands buffered log records over now.
  void flushLogs();
  // Flushes logs, drops pending jobs' callbacks, closes the handles. Idempotent.
  void close();

  StoreService& service() { return service_; }

 private:
  struct Mailbox;
  static void onAsync(uv_async_t* async);
  void deliver();

  uv_loop_t* loop_;
  StoreService& service_;
  std::shared_ptr<Mailbox> mailbox_;
  core::UvHandle<uv_async_t> async_;  // replies from the store thread
  core::UvHandle<uv_timer_t> flushTimer_;
  std::unordered_map<Handle, Done> pending_;
  Handle nextHandle_ = 1;
  std::vector<LogRecord> logs_;
  bool closed_ = false;
};

}  // namespace flowguard::store
