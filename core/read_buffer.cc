#include "core/read_buffer.h"

#include <cstring>

#include "core/recycler.h"

namespace flowguard::core {

ReadBuffer::ReadBuffer(size_t initialCapacity, size_t maxCapacity, size_t minReadSpace)
    : initialCapacity_(initialCapacity), maxCapacity_(maxCapacity), minReadSpace_(minReadSpace) {}

std::span<char> ReadBuffer::writable() {
  if (empty()) start_ = end_ = 0;
  if (capacity_ == 0) reallocate(initialCapacity_);
  if (capacity_ - end_ < minReadSpace_ && start_ > 0) {
    // Move the unparsed bytes to the front rather than growing: a parser that consumes as
    // it goes never needs more than the largest message head.
    std::memmove(memory_, memory_ + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (capacity_ - end_ < minReadSpace_ && capacity_ < maxCapacity_) reallocate(maxCapacity_);
  return {memory_ + end_, capacity_ - end_};
}

ReadBuffer::~ReadBuffer() {
  recycler::deallocate(memory_, capacity_);
}

const char* ReadBuffer::data() const {
  static constexpr char kNothing[1] = {0};
  return memory_ != nullptr ? memory_ + start_ : kNothing;
}

void ReadBuffer::releaseIfEmpty() {
  if (!empty() || capacity_ == 0) return;
  recycler::deallocate(memory_, capacity_);
  memory_ = nullptr;
  capacity_ = 0;
  start_ = end_ = 0;
}

void ReadBuffer::reallocate(size_t capacity) {
  auto* bigger = static_cast<char*>(recycler::allocate(capacity));
  if (end_ > start_) std::memcpy(bigger, memory_ + start_, end_ - start_);
  end_ -= start_;
  start_ = 0;
  recycler::deallocate(memory_, capacity_);
  memory_ = bigger;
  capacity_ = capacity;
}

}  // namespace flowguard::core
