// --register N: obtains API keys from the gateway before the run, with N blocking
// POST /register requests on one keep-alive connection to the target's origin. The gateway
// answers 201 {"api_key": "..."}.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "loadgen/options.h"

namespace flowguard::loadgen {

// Throws std::runtime_error saying what failed (connect, status, body) on the first failure.
std::vector<std::string> registerKeys(const sockaddr_storage& address, const TargetUrl& target,
                                      unsigned count, double timeoutS);

}  // namespace flowguard::loadgen
