// A number as decimal text in a buffer on the stack: for header values and Redis arguments
// on the request path, where a std::string would allocate.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <string_view>

namespace flowguard::core {

struct Decimal {
  std::array<char, 24> text{};  // 20 digits at most, NUL-terminated
  size_t size = 0;
  explicit Decimal(uint64_t value) {
    size = static_cast<size_t>(std::to_chars(text.data(), text.data() + text.size() - 1, value).ptr -
                               text.data());
  }
  std::string_view view() const { return {text.data(), size}; }
};

}  // namespace flowguard::core
