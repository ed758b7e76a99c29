// A connection's read buffer: bytes received and not yet parsed.
//
// It holds memory only while it holds bytes. A connection gives the buffer back with
// releaseIfEmpty() once everything read is parsed, so an idle keep-alive client or a pooled
// upstream connection costs no buffer; the next read allocates again. nginx does the same
// for keep-alive connections. Without it, memory followed the number of open connections
// (16-64 KiB each) instead of the number of requests being read: the soak's RSS grew with
// the backend pool whenever a busy machine made the pool open more connections.
//
// The memory comes from the recycler (core/recycler.h), so taking and releasing a buffer
// per request reuses the buffer a request before gave back instead of calling malloc; the
// bytes are never zeroed, since every byte handed out is written by a read before it is parsed.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace flowguard::core {

class ReadBuffer {
 public:
  // The buffer starts at initialCapacity and grows once, to maxCapacity, when fewer than
  // minReadSpace bytes are left after the unparsed bytes were moved to the front.
  ReadBuffer(size_t initialCapacity, size_t maxCapacity, size_t minReadSpace);
  ~ReadBuffer();
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  // Where the next read goes (allocates if the buffer holds no memory). Never empty unless
  // the buffer is full().
  std::span<char> writable();
  // `count` bytes were read into writable().
  void commit(size_t count) { end_ += count; }

  // The unparsed bytes. data() is valid (not null) even when nothing is allocated.
  const char* data() const;
  size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  void consume(size_t count) { start_ += count; }

  // No read fits any more: the unparsed bytes fill the largest buffer but the reader needs
  // more of them to make progress.
  bool full() const { return size() >= maxCapacity_ - minReadSpace_; }

  // Frees the memory when it holds no unparsed bytes. Views into data() die with it.
  void releaseIfEmpty();
  size_t capacity() const { return capacity_; }

 private:
  void reallocate(size_t capacity);

  char* memory_ = nullptr;  // capacity_ bytes from the recycler
  size_t capacity_ = 0;
  size_t start_ = 0;  // unparsed bytes are [start_, end_)
  size_t end_ = 0;
  size_t initialCapacity_;
  size_t maxCapacity_;
  size_t minReadSpace_;
};

}  // namespace flowguard::core
