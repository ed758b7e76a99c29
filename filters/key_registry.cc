#include "filters/key_registry.h"

#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

namespace flowguard::filters {

KeyDigest digestKey(std::string_view key) {
  // One fetched algorithm and one context per thread: OpenSSL 3 is slow when it has to
  // look the algorithm up on every call. Freed when the thread ends.
  struct Sha256 {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    ~Sha256() {
      EVP_MD_CTX_free(context);
      EVP_MD_free(md);
    }
  };
  thread_local Sha256 state;
  EVP_MD* sha256 = state.md;
  EVP_MD_CTX* context = state.context;
  KeyDigest digest{};
  unsigned int length = 0;
  if (sha256 == nullptr || context == nullptr || EVP_DigestInit_ex(context, sha256, nullptr) != 1 ||
      EVP_DigestUpdate(context, key.data(), key.size()) != 1 ||
      EVP_DigestFinal_ex(context, digest.data(), &length) != 1 || length != digest.size()) {
    throw std::runtime_error("SHA-256 is not available from OpenSSL");
  }
  return digest;
}

std::string keyPrefix(std::string_view key) {
  // Never more than a third of the key: a short yaml key such as "test-api-key" must not
  // show up whole in a log.
  return std::string(key.substr(0, std::min<size_t>(12, key.size() / 3)));
}

std::shared_ptr<const KeySnapshot> staticKeySnapshot(const config::AuthConfig& config) {
  auto snapshot = std::make_shared<KeySnapshot>();
  for (const auto& key : config.keys) {
    auto record = std::make_shared<ApiKeyRecord>();
    record->id = "static:" + key.name;
    record->name = key.name;
    record->prefix = keyPrefix(key.key);
    record->digest = digestKey(key.key);
    record->plan = key.plan;
    record->limit = key.limit;
    snapshot->emplace(digestKey(key.key), std::move(record));
  }
  return snapshot;
}

}  // namespace flowguard::filters
