// Ordered, batched writes to one uv stream with no copy in the common case.
//
// write() first tries uv_try_write with every buffer at once; only what the kernel did not
// take is copied into a pending buffer and sent with uv_write. While a uv_write is in
// flight, new data accumulates in the pending buffer and goes out as one write when the
// previous one completes, so many small writes become one syscall under load.
//
// Owned by the connection that owns the stream; never outlives it.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <uv.h>

namespace flowguard::core {

class StreamWriter {
 public:
  // Called when queued bytes reach zero after having been above zero (drain), and when a
  // write fails (status < 0). Runs inside a libuv callback.
  using Callback = std::function<void(int status)>;

  explicit StreamWriter(uv_stream_t* stream) : stream_(stream) { req_.data = this; }
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  void setCallback(Callback cb) { callback_ = std::move(cb); }

  // Writes the pieces in order. Returns false when the stream is broken (the error was
  // already reported or will be reported through the callback).
  bool write(const std::string_view* pieces, size_t count);
  bool write(std::string_view piece) { return write(&piece, 1); }

  // Bytes accepted but not yet handed to the kernel.
  size_t queuedBytes() const { return inFlight_.size() + pending_.size(); }
  bool failed() const { return failed_; }

 private:
  void startWrite();
  static void onWrite(uv_write_t* req, int status);

  uv_stream_t* stream_;
  uv_write_t req_;
  bool writing_ = false;
  bool failed_ = false;
  std::string inFlight_;  // owned by the kernel write in progress
  std::string pending_;   // waiting for the write in progress to finish
  Callback callback_;
};

}  // namespace flowguard::core
