// How every report of flowguard-loadgen names an API key: by its prefix, never whole, so a
// summary, a JSON file, an HTML report or ratelimit.log can be shared without leaking keys.
#pragma once

#include <string>
#include <string_view>

namespace flowguard::loadgen {

// The first min(12, size/3) characters of `key`. This is the gateway's own rule
// (filters/key_registry.cc, keyPrefix), so a prefix in a loadgen report is the one the
// gateway shows in /stats, its logs and its request log. It is repeated here rather than
// linked: the load generator does not depend on the gateway's filters.
std::string keyPrefix(std::string_view key);

}  // namespace flowguard::loadgen
