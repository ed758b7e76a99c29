#include "loadgen/key_prefix.h"

#include <algorithm>

namespace flowguard::loadgen {

std::string keyPrefix(std::string_view key) {
  // Never more than a third of the key: a short key such as "test-api-key" must not show up
  // whole in a report.
  return std::string(key.substr(0, std::min<size_t>(12, key.size() / 3)));
}

}  // namespace flowguard::loadgen
