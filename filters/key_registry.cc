#include "filters/key_registry.h"

// The SHA256_* functions are deprecated in OpenSSL 3 in favour of EVP (see digestKey).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <algorithm>
#include <stdexcept>

namespace flowguard::filters {

KeyDigest digestKey(std::string_view key) {
  // OpenSSL's SHA-256 block functions directly: the EVP interface of OpenSSL 3 spends more
  // on provider dispatch than on hashing a 40-byte key, and this runs on every request.
  SHA256_CTX context;
  KeyDigest digest{};
  if (SHA256_Init(&context) != 1 || SHA256_Update(&context, key.data(), key.size()) != 1 ||
      SHA256_Final(digest.data(), &context) != 1) {
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  }
  return digest;
}

std::string keyPrefix(std::string_view key) {
  // Never more than a third of the key: a short yaml key such as "test-api-key" must not
  // show up whole in a log.
  return std::string(key.substr(0, std::min<size_t>(12, key.size() / 3)));
}

}  // namespace flowguard::filters
