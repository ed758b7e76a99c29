#include "core/stream_writer.h"

#include <array>

namespace flowguard::core {

bool StreamWriter::write(const std::string_view* pieces, size_t count) {
  if (failed_) return false;
  size_t start = 0;  // first piece not fully written
  size_t offset = 0;  // bytes of pieces[start] already written
  if (!writing_ && pending_.empty()) {
    // Fast path: hand everything to the kernel right now, copying nothing.
    constexpr size_t kMaxBufs = 16;
    std::array<uv_buf_t, kMaxBufs> bufs;
    size_t n = 0;
    size_t total = 0;
    for (size_t i = 0; i < count && n < kMaxBufs; ++i) {
      if (pieces[i].empty()) continue;
      bufs[n++] = uv_buf_init(const_cast<char*>(pieces[i].data()), pieces[i].size());
      total += pieces[i].size();
    }
    if (n == 0) return true;
    int written = uv_try_write(stream_, bufs.data(), n);
    if (written < 0 && written != UV_EAGAIN && written != UV_ENOSYS) {
      failed_ = true;
      if (callback_) callback_(written);
      return false;
    }
    size_t done = written > 0 ? static_cast<size_t>(written) : 0;
    if (done == total && n == count) return true;
    // Find where the kernel stopped.
    while (start < count && done >= pieces[start].size()) {
      done -= pieces[start].size();
      ++start;
    }
    offset = done;
  }
  for (size_t i = start; i < count; ++i) {
    pending_.append(pieces[i].data() + offset, pieces[i].size() - offset);
    offset = 0;
  }
  if (!writing_ && !pending_.empty()) startWrite();
  return !failed_;
}

void StreamWriter::startWrite() {
  inFlight_.swap(pending_);
  pending_.clear();
  uv_buf_t buf = uv_buf_init(inFlight_.data(), inFlight_.size());
  int rc = uv_write(&req_, stream_, &buf, 1, &StreamWriter::onWrite);
  if (rc < 0) {
    failed_ = true;
    inFlight_.clear();
    if (callback_) callback_(rc);
    return;
  }
  writing_ = true;
}

void StreamWriter::onWrite(uv_write_t* req, int status) {
  auto* self = static_cast<StreamWriter*>(req->data);
  self->writing_ = false;
  self->inFlight_.clear();
  if (status < 0) {
    self->failed_ = true;
    self->pending_.clear();
    if (self->callback_) self->callback_(status);
    return;
  }
  if (!self->pending_.empty()) {
    self->startWrite();
    return;
  }
  if (self->callback_) self->callback_(0);
}

}  // namespace flowguard::core
