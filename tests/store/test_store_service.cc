// The store thread and a worker's StoreClient, over a real SQLite file (and, for the outage
// cases, a PostgreSQL URL where nothing listens): jobs run off the loop and answer on it,
// cancelled jobs stay silent, key changes reach the listener before the job's answer, logs
// are batched and written, an overflowing queue drops the oldest, and stop() flushes.
#include <doctest/doctest.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include "store/store.h"
#include "store/store_client.h"
#include "store/store_service.h"
#include "tests/support/test_loop.h"
#include "tests/support/test_support.h"

using namespace std::chrono_literals;
using flowguard::store::LogRecord;
using flowguard::store::makeStore;
using flowguard::store::Store;
using flowguard::store::StoreClient;
using flowguard::store::StoreOutcome;
using flowguard::store::StoreService;
using flowguard::test::Millis;
using flowguard::test::TempDir;
using flowguard::test::TestLoop;
using Clock = std::chrono::steady_clock;

namespace {

flowguard::config::StorageConfig storageConfig(uint64_t logQueue = 100'000) {
  flowguard::config::StorageConfig config;
  config.configured = true;
  config.logQueue = logQueue;
  config.flushInterval = 50ms;
  config.keyPollInterval = 100ms;
  return config;
}

LogRecord logRecord(int i) {
  LogRecord r;
  r.timeMs = 1'700'000'000'000 + i;
  r.requestId = "req-" + std::to_string(i);
  r.method = "GET";
  r.path = "/item/" + std::to_string(i);
  r.status = 200;
  r.listener = "l";
  return r;
}

// Runs one job through the client and waits for its outcome.
StoreOutcome runJob(TestLoop& loop, StoreClient& client, StoreService::Work work) {
  std::optional<StoreOutcome> outcome;
  client.submit(std::move(work), [&](StoreOutcome o) { outcome = std::move(o); });
  REQUIRE(loop.runUntil([&] { return outcome.has_value(); }));
  return *outcome;
}

}  // namespace

TEST_CASE("jobs run on the store thread and answer on the asking loop; key changes come first") {
  TempDir dir;
  const auto config = storageConfig();
  StoreService service(makeStore("sqlite://" + dir.file("k.db")), config);
  std::mutex mutex;
  std::vector<flowguard::store::StoredKey> published;  // every change heard, in order
  std::atomic<int> publications{0};
  service.setKeysListener([&](const std::vector<flowguard::store::StoredKey>& changed) {
    std::lock_guard lock(mutex);
    published.insert(published.end(), changed.begin(), changed.end());
    ++publications;
  });
  service.start();
  REQUIRE(service.waitForKeys(5s));
  CHECK(publications == 1);  // the first load, empty
  TestLoop loop;
  StoreClient client(loop.get(), service);

  const auto testThread = std::this_thread::get_id();
  std::thread::id workThread;
  std::optional<StoreOutcome> outcome;
  int seenAtAnswer = -1;
  client.submit(
      [&](Store& store) {
        workThread = std::this_thread::get_id();
        flowguard::store::NewKey key;
        key.digest[0] = 7;
        key.prefix = "fg_abc";
        key.name = "n";
        key.createdAtMs = 1;
        return nlohmann::json{{"id", store.insertKey(key).id}};
      },
      [&](StoreOutcome o) {
        CHECK(std::this_thread::get_id() == testThread);
        std::lock_guard lock(mutex);
        seenAtAnswer = static_cast<int>(published.size());
        outcome = std::move(o);
      },
      true);
  REQUIRE(loop.runUntil([&] { return outcome.has_value(); }));
  CHECK(workThread != testThread);
  REQUIRE(outcome->status == StoreOutcome::Status::Ok);
  CHECK(outcome->value["id"] == 1);
  CHECK(seenAtAnswer == 1);  // the listener knew the new key before the answer arrived

  // A job that throws: Failed, with the message; the thread goes on.
  StoreOutcome failed =
      runJob(loop, client, [](Store&) -> nlohmann::json { throw std::runtime_error("boom"); });
  CHECK(failed.status == StoreOutcome::Status::Failed);
  CHECK(failed.error == "boom");
  CHECK(runJob(loop, client, [](Store& s) { return nlohmann::json(s.listKeys().size()); }).value == 1);

  // Cancelled: never called back.
  bool called = false;
  auto handle = client.submit([](Store&) { return nlohmann::json(1); }, [&](StoreOutcome) { called = true; });
  client.cancel(handle);
  runJob(loop, client, [](Store&) { return nlohmann::json(2); });  // answered after the cancelled one
  CHECK_FALSE(called);

  // After close(): submit answers Unavailable at once; late answers are dropped.
  client.submit([](Store&) { return nlohmann::json(3); }, [&](StoreOutcome) { called = true; });
  client.close();
  std::optional<StoreOutcome> closed;
  client.submit([](Store&) { return nlohmann::json(4); }, [&](StoreOutcome o) { closed = std::move(o); });
  REQUIRE(closed.has_value());
  CHECK(closed->status == StoreOutcome::Status::Unavailable);
  loop.runUntil([] { return false; }, 200ms);
  CHECK_FALSE(called);
  service.stop();
}

TEST_CASE("logs are batched, written, and flushed by stop()") {
  TempDir dir;
  const std::string url = "sqlite://" + dir.file("logs.db");
  {
    StoreService service(makeStore(url), storageConfig());
    service.start();
    REQUIRE(service.waitForKeys(5s));
    TestLoop loop;
    StoreClient client(loop.get(), service);
    for (int i = 0; i < 1000; ++i) client.log(logRecord(i));
    REQUIRE(loop.runUntil([&] { return service.stats().logsWritten == 1000; }));
    CHECK(service.stats().logBatches <= 10);  // batches, not one write per record
    flowguard::store::LogQuery query;
    query.limit = 1000;
    CHECK(runJob(loop, client, [query](Store& s) {
            return nlohmann::json(s.queryLogs(query).size());
          }).value == 1000);

    // Logged just before shutdown: close() hands them over, stop() writes them.
    for (int i = 1000; i < 1050; ++i) client.log(logRecord(i));
    client.close();
    service.stop();
    CHECK(service.stats().logsWritten == 1050);
    CHECK(service.stats().logsDropped == 0);
  }
  auto store = makeStore(url);
  store->open();
  flowguard::store::LogQuery query;
  query.limit = 1000;
  auto rows = store->queryLogs(query);
  REQUIRE_FALSE(rows.empty());
  CHECK(rows.front().record.requestId == "req-1049");
}

TEST_CASE("a database that cannot be reached: jobs fail fast, the log queue keeps the newest") {
  const flowguard::test::ClosedPort closed;  // refuses connections for the whole test
  StoreService service(makeStore("postgres://nobody@127.0.0.1:" + std::to_string(closed.port()) + "/none"),
                       storageConfig(10));
  service.start();
  CHECK_FALSE(service.waitForKeys(300ms));
  TestLoop loop;
  StoreClient client(loop.get(), service);
  const auto t0 = Clock::now();
  StoreOutcome outcome = runJob(loop, client, [](Store& s) { return nlohmann::json(s.listKeys().size()); });
  CHECK(outcome.status == StoreOutcome::Status::Unavailable);
  CHECK_FALSE(outcome.error.empty());
  CHECK(Clock::now() - t0 < 3s);
  CHECK_FALSE(service.stats().available);

  std::vector<LogRecord> records;
  for (int i = 0; i < 25; ++i) records.push_back(logRecord(i));
  service.appendLogs(records);
  CHECK(records.empty());
  CHECK(service.stats().logsQueued == 10);
  CHECK(service.stats().logsDropped == 15);
  client.close();
  service.stop(200ms);  // nothing can be written: the rest is dropped and counted
  CHECK(service.stats().logsDropped == 25);
  CHECK(service.stats().logsWritten == 0);
}
