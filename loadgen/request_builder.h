// The bytes of each request, built once before the run: one buffer per API key (or a single
// one without keys), so sending is a write of a ready buffer and never formats anything.
#pragma once

#include <string>
#include <vector>

#include "loadgen/options.h"

namespace flowguard::loadgen {

// Index i holds the request for options.keys[i]; with no keys, one request without X-API-Key.
std::vector<std::string> buildRequests(const Options& options);

// One request as sent: request line, Host, the user's headers, X-API-Key (when key is not
// empty), Content-Length (when there is a body or the method usually carries one), body.
std::string buildRequest(const Options& options, const std::string& key);

}  // namespace flowguard::loadgen
