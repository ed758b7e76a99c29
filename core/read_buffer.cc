#include "core/read_buffer.h"

#include <cstring>

namespace flowguard::core {

ReadBuffer::ReadBuffer(size_t initialCapacity, size_t maxCapacity, size_t minReadSpace)
    : initialCapacity_(initialCapacity), maxCapacity_(maxCapacity), minReadSpace_(minReadSpace) {}

std::span<char> ReadBuffer::writable() {
  if (empty()) start_ = end_ = 0;
  if (capacity_ == 0) reallocate(initialCapacity_);
  if (capacity_ - end_ < minReadSpace_ && start_ > 0) {
    // Move the unparsed bytes to the front rather than growing: a parser that consumes as
    // it goes never needs more than the largest message head.
    std::memmove(memory_.get(), memory_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (capacity_ - end_ < minReadSpace_ && capacity_ < maxCapacity_) reallocate(maxCapacity_);
  return {memory_.get() + end_, capacity_ - end_};
}

const char* ReadBuffer::data() const {
  static constexpr char kNothing[1] = {0};
  return memory_ ? memory_.get() + start_ : kNothing;
}

void ReadBuffer::releaseIfEmpty() {
  if (!empty() || capacity_ == 0) return;
  memory_.reset();
  capacity_ = 0;
  start_ = end_ = 0;
}

void ReadBuffer::reallocate(size_t capacity) {
  std::unique_ptr<char[]> bigger(new char[capacity]);
  if (end_ > start_) std::memcpy(bigger.get(), memory_.get() + start_, end_ - start_);
  end_ -= start_;
  start_ = 0;
  memory_ = std::move(bigger);
  capacity_ = capacity;
}

}  // namespace flowguard::core
