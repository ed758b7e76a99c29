#include "loadgen/address.h"

#include <netdb.h>

#include <cstring>
#include <stdexcept>

namespace flowguard::loadgen {

sockaddr_storage resolveAddress(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    throw std::runtime_error("cannot resolve " + host + ": " + gai_strerror(rc));
  }
  sockaddr_storage out{};
  std::memcpy(&out, result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  return out;
}

}  // namespace flowguard::loadgen
