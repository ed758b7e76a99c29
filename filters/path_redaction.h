// API keys carried in a request path (the key_metrics handler's GET /metrics/<key>) must not
// reach the request log or the access log, where everything else keeps only key digests and
// prefixes. The segment after a key-bearing route prefix is logged as the key's display
// prefix (keyPrefix: at most a third of it) followed by "…", whatever the request's outcome:
// a 401 or 403 for someone else's key is logged the same way.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace flowguard::filters {

// The prefixes of the routes whose handler reads a key from the path (key_metrics).
std::vector<std::string> keyPathPrefixes(const config::ListenerConfig& listener);

// `path` with the segment after any of `prefixes` cut to its display prefix plus "…"; `path`
// itself when no prefix applies. `scratch` holds the result when it differs.
std::string_view redactKeyPath(std::string_view path, const std::vector<std::string>& prefixes,
                               std::string& scratch);

}  // namespace flowguard::filters
