#include "loadgen/address.h"

#include <stdexcept>

#include "core/listener.h"

namespace flowguard::loadgen {

sockaddr_storage resolveAddress(const std::string& host, uint16_t port) {
  sockaddr_storage out{};
  std::string error;
  if (core::lookupAddress(host, port, out, error) != 0) throw std::runtime_error(error);
  return out;
}

}  // namespace flowguard::loadgen
