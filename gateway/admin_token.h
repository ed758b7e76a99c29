// The admin listener's token when flowguard.yaml gives none but the listener is reachable from
// other machines: made at the first start, kept in `state_dir`, read again at every later
// start (Jupyter's way). So `docker-compose up` needs no secret set by hand, and the admin
// listener is still never open: whoever can read the state directory (or the gateway's log)
// has the token.
#pragma once

#include <string>

namespace flowguard::gateway {

struct AdminToken {
  std::string token;
  std::string path;      // the file it is kept in
  bool created = false;  // made by this start
};

// The name of the file in the state directory.
inline constexpr const char* kAdminTokenFile = "admin-token";

// Reads `stateDir`/admin-token, or makes it (32 hex digits from the CSPRNG, mode 0600, the
// directory created if missing). Two gateways starting at once on the same directory end up
// with the same token: the file appears whole or not at all. Throws std::runtime_error with
// a message naming the path when the directory or file cannot be used.
AdminToken loadOrCreateAdminToken(const std::string& stateDir);

}  // namespace flowguard::gateway
