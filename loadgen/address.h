// Name resolution, done once on the main thread before the workers start.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace flowguard::loadgen {

// The first address getaddrinfo gives for host:port (TCP). Throws std::runtime_error.
sockaddr_storage resolveAddress(const std::string& host, uint16_t port);

}  // namespace flowguard::loadgen
