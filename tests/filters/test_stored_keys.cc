// The stored keys as the auth filter sees them: built change by change, with plan limits,
// per-key overrides, revocation, and the limit JSON both ways.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "config/config_loader.h"
#include "filters/filter_plugin.h"
#include "filters/recent_keys.h"
#include "filters/stored_keys.h"
#include "tests/support/test_support.h"

using namespace flowguard;
using namespace std::chrono_literals;

namespace {

store::StoredKey storedKey(int64_t id, const std::string& key, const std::string& plan,
                           std::string limits = {}) {
  store::StoredKey k;
  k.id = id;
  k.digest = filters::digestKey(key);
  k.prefix = filters::keyPrefix(key);
  k.name = "name-" + std::to_string(id);
  k.plan = plan;
  k.limits = std::move(limits);
  k.version = id;
  return k;
}

}  // namespace

// Known-answer vectors for the digest keys are stored and looked up by. The expected values
// come from outside FlowGuard (FIPS 180-2 / NIST CSHA examples, confirmed with coreutils:
// `printf abc | sha256sum`), so an identity, truncated or otherwise wrong "digest" fails here
// even though every lookup in the product would still agree with itself.
TEST_CASE("digestKey is SHA-256: known-answer vectors") {
  auto hex = [](const filters::KeyDigest& d) { return flowguard::test::toHex(d); };
  CHECK(hex(filters::digestKey("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(filters::digestKey("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Two blocks (56 bytes: the padding spills into a second block).
  CHECK(hex(filters::digestKey("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("stored keys: issued, limited by plan or override, revoked") {
  auto loaded = config::loadConfigText(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    filters:
      - name: router
        routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ]
plans:
  free: { rate: 10/s, burst: 20 }
  pro: { algorithm: fixed_window, limit: 1000, window: 1m }
)",
                                       "t.yaml");
  REQUIRE(loaded.ok());
  filters::StoredKeySet set(*loaded.config);
  const std::string a = "fg_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b = "fg_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  const std::string override =
      filters::limitToJson(config::RateLimitSpec{config::RateLimitAlgorithm::TokenBucket, 3, 1000ms, 5})
          .dump();
  auto first = set.apply({storedKey(1, a, "free"), storedKey(2, b, "pro", override)});
  REQUIRE(first->size() == 2);
  auto ra = first->at(filters::digestKey(a));
  CHECK(ra->id == "key:1");
  CHECK(ra->storedKeyId == 1);
  CHECK(ra->name == "name-1");
  CHECK(ra->digest == filters::digestKey(a));
  REQUIRE(ra->limit);
  CHECK(ra->limit->requests == 10);
  CHECK(ra->limit->burst == 20);
  auto rb = first->at(filters::digestKey(b));
  REQUIRE(rb->limit);
  CHECK(rb->limit->requests == 3);  // its own limit wins over the plan's
  CHECK(rb->limit->burst == 5);

  // Revoking b leaves a untouched: the same record object carries over.
  store::StoredKey revoked = storedKey(2, b, "pro");
  revoked.revokedAtMs = 5;
  auto second = set.apply({revoked});
  REQUIRE(second->size() == 1);
  CHECK(second->at(filters::digestKey(a)) == ra);
  CHECK(first->size() == 2);  // a published snapshot never changes

  // A key on a plan the yaml no longer has: no limit of its own (the filter's default applies).
  auto third = set.apply({storedKey(3, "fg_cccccccccccccccccccccccccccccccc", "gone")});
  CHECK_FALSE(third->at(filters::digestKey("fg_cccccccccccccccccccccccccccccccc"))->limit);
}

TEST_CASE("stored keys: a row written in flowguard.yaml is the yaml's to authenticate") {
  filters::StoredKeySet set(std::vector<config::Plan>{});
  store::StoredKey registered = storedKey(1, "fg_registered-key-000000000000", "");
  store::StoredKey configured = storedKey(2, "test-api-key", "");
  configured.configured = true;
  auto snapshot = set.apply({registered, configured});
  CHECK(snapshot->size() == 1);
  CHECK(snapshot->count(registered.digest) == 1);
  // A registered key that later appears in the file leaves the store's set too.
  registered.configured = true;
  registered.version = 3;
  CHECK(set.apply({registered})->empty());
}

TEST_CASE("configuredKeys: every auth filter's yaml keys, each once") {
  filters::registerPluggedFilters();  // auth parses only once registered, as in the gateway's main()
  auto loaded = config::loadConfigText(R"(listeners:
  - name: a
    address: 127.0.0.1:8000
    filters:
      - { name: auth, keys: [ { key: key-one-aaaaaa, name: one, plan: free }, { key: key-two-bbbbbb, name: two } ] }
      - name: router
        routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ]
  - name: b
    address: 127.0.0.1:8001
    filters:
      - { name: auth, keys: [ { key: key-one-aaaaaa, name: one } ] }
      - name: router
        routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ]
)",
                                       "t.yaml");
  REQUIRE(loaded.ok());
  std::vector<store::NewKey> keys = filters::configuredKeys(*loaded.config, 42);
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].digest == filters::digestKey("key-one-aaaaaa"));
  CHECK(keys[0].prefix == "key-");
  CHECK(keys[0].name == "one");
  CHECK(keys[0].plan == "free");
  CHECK(keys[0].createdAtMs == 42);
  CHECK(keys[1].name == "two");
}

TEST_CASE("limit JSON round trip and malformed input") {
  config::RateLimitSpec window{config::RateLimitAlgorithm::SlidingWindow, 100, 60'000ms, 0};
  auto back = filters::limitFromJson(filters::limitToJson(window));
  REQUIRE(back);
  CHECK(back->algorithm == config::RateLimitAlgorithm::SlidingWindow);
  CHECK(back->requests == 100);
  CHECK(back->period == 60'000ms);
  for (const char* bad : {R"({})", R"({"algorithm":"x","requests":1,"period_ms":1})",
                          R"({"algorithm":"token_bucket","requests":0,"period_ms":1})",
                          R"({"algorithm":"token_bucket","requests":1,"period_ms":-5})",
                          R"({"algorithm":"token_bucket","requests":1,"period_ms":1,"burst":0})", "[1]"}) {
    CHECK_MESSAGE(!filters::limitFromJson(nlohmann::json::parse(bad)), bad);
  }
}

TEST_CASE("stored keys: new plans from a reload reach keys without a limit of their own") {
  config::Plan free{
      "free", config::RateLimitSpec{config::RateLimitAlgorithm::TokenBucket, 10, 1000ms, 20}, true, {}};
  filters::StoredKeySet set(std::vector<config::Plan>{free});
  const std::string a = "fg_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b = "fg_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  const std::string own =
      filters::limitToJson(config::RateLimitSpec{config::RateLimitAlgorithm::TokenBucket, 3, 1000ms, 5})
          .dump();
  auto before = set.apply({storedKey(1, a, "free"), storedKey(2, b, "free", own)});
  auto ra = before->at(filters::digestKey(a));
  auto rb = before->at(filters::digestKey(b));

  free.limit = config::RateLimitSpec{config::RateLimitAlgorithm::FixedWindow, 2, 60'000ms, 0};
  auto after = set.setPlans({free});
  REQUIRE(after->at(filters::digestKey(a))->limit);
  CHECK(after->at(filters::digestKey(a))->limit->requests == 2);
  CHECK(after->at(filters::digestKey(a))->limit->algorithm == config::RateLimitAlgorithm::FixedWindow);
  CHECK(after->at(filters::digestKey(b)) == rb);  // its own limit: untouched, same record
  CHECK(ra->limit->requests == 10);               // records in published snapshots never change

  // A plan that is gone: no plan limit (the rate_limit filter's default applies).
  auto none = set.setPlans({});
  CHECK_FALSE(none->at(filters::digestKey(a))->limit);
  CHECK(none->at(filters::digestKey(b))->limit->requests == 3);
}

// ---- RecentKeys: the auth filter's cache of keys it accepted -------------------------------

TEST_CASE("RecentKeys: a hit needs the same key and the same epoch; a slot is taken over") {
  filters::RecentKeys recent;
  auto record = std::make_shared<filters::ApiKeyRecord>();
  record->name = "alice";
  CHECK(recent.find("fg_alice-key", 1) == nullptr);  // empty
  recent.remember("fg_alice-key", 1, record);
  const auto* hit = recent.find("fg_alice-key", 1);
  REQUIRE(hit != nullptr);
  CHECK((*hit)->name == "alice");
  CHECK(recent.find("fg_alice-key", 2) == nullptr);  // a registry published since
  CHECK(recent.find("fg_alice-kez", 1) == nullptr);  // one byte off
  CHECK(recent.find("fg_alice-ke", 1) == nullptr);   // a prefix
  CHECK(recent.find("", 1) == nullptr);

  // Keys that share alice's slot replace her entry; she is then a miss (and looked up again).
  std::string rival;
  for (int i = 0; rival.empty(); ++i) {
    const std::string candidate = "fg_rival-" + std::to_string(i);
    if (filters::RecentKeys::slotOf(candidate) == filters::RecentKeys::slotOf("fg_alice-key")) {
      rival = candidate;
    }
  }
  recent.remember(rival, 1, std::make_shared<filters::ApiKeyRecord>());
  CHECK(recent.find(rival, 1) != nullptr);
  CHECK(recent.find("fg_alice-key", 1) == nullptr);
}
