// The store thread: the one thread that talks to the database, so a slow or absent database
// never stalls a worker's loop.
//
// Workers hand it two kinds of work through a StoreClient (store_client.h): jobs (register a
// key, list keys, query logs...) whose outcome comes back to the asking loop, and request-log
// records, which it queues (bounded: beyond `log_queue` the oldest are dropped and counted)
// and writes in batches at least every `flush_interval`. It also polls the keys table every
// `key_poll_interval` and hands the current set of active keys to a listener, which is how a
// key issued or revoked by any gateway sharing the database reaches every worker.
//
// When the database is down, jobs fail at once with Status::Unavailable, logs wait in the
// queue, the last keys seen stay in force, and the thread reconnects with backoff (100 ms up
// to 5 s), saying so on stderr.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/stat_set.h"
#include "store/store.h"

namespace flowguard::store {

struct StoreOutcome {
  enum class Status { Ok, Unavailable, Failed };
  Status status = Status::Ok;
  nlohmann::json value;  // what the job returned, when Ok
  std::string error;     // why not, otherwise
};

struct StoreStats {
  bool available = false;
  uint64_t logsQueued = 0;  // waiting to be written now
  uint64_t logsWritten = 0;
  uint64_t logsDropped = 0;  // the queue was full: the oldest went
  uint64_t logBatches = 0;
  uint64_t jobs = 0;
  uint64_t jobsFailed = 0;  // Unavailable or Failed
  uint64_t outages = 0;     // times the database went away
  uint64_t activeKeys = 0;
};

// The key store's numbers, declared once: /stats `store` shows each under its name,
// Prometheus under the name given (names older than the table kept).
inline constexpr core::FieldStatDecl<StoreStats> kStoreStats[] = {
    {"logs_written", "flowguard_request_log_written_total", "Request-log records written to the database.",
     false, [](const StoreStats& s) { return static_cast<int64_t>(s.logsWritten); }},
    {"logs_dropped", "flowguard_request_log_dropped_total",
     "Request-log records dropped (queue full, shutdown).", false,
     [](const StoreStats& s) { return static_cast<int64_t>(s.logsDropped); }},
    {"logs_queued", "flowguard_request_log_queued", "Request-log records waiting to be written.", true,
     [](const StoreStats& s) { return static_cast<int64_t>(s.logsQueued); }},
    {"log_batches", "flowguard_request_log_batches_total", "Batches of request-log records written.", false,
     [](const StoreStats& s) { return static_cast<int64_t>(s.logBatches); }},
    {"jobs", "flowguard_store_jobs_total", "Key-store jobs run (register, list, revoke...).", false,
     [](const StoreStats& s) { return static_cast<int64_t>(s.jobs); }},
    {"jobs_failed", "flowguard_store_jobs_failed_total",
     "Key-store jobs that failed or found the database away.", false,
     [](const StoreStats& s) { return static_cast<int64_t>(s.jobsFailed); }},
    {"outages", "flowguard_store_outages_total", "Times the key store's database went away.", false,
     [](const StoreStats& s) { return static_cast<int64_t>(s.outages); }},
    {"active_keys", "flowguard_api_keys_active", "API keys in the key store that are not revoked.", true,
     [](const StoreStats& s) { return static_cast<int64_t>(s.activeKeys); }},
};

class StoreService {
 public:
  // Runs on the store thread; may throw (StoreUnavailable, StoreError, anything else).
  using Work = std::function<nlohmann::json(Store&)>;
  // Runs on the store thread with the job's outcome; must not block.
  using Reply = std::function<void(StoreOutcome)>;
  // Runs on the store thread with the keys that changed (issued or revoked) since the last
  // call; the first call has every key. Applying them in order gives the active set.
  using KeysListener = std::function<void(const std::vector<StoredKey>& changed)>;

  StoreService(std::unique_ptr<Store> store, const config::StorageConfig& config);
  ~StoreService();  // stop()
  StoreService(const StoreService&) = delete;
  StoreService& operator=(const StoreService&) = delete;

  // Before start().
  void setKeysListener(KeysListener listener) { keysListener_ = std::move(listener); }
  // Any thread: the keys written in flowguard.yaml (at start and after each reload). The
  // store thread gives each a row (Store::syncConfiguredKeys) as soon as the database is
  // open, again at every reconnect, and from then on counts the usage of request-log
  // records that name one (LogRecord::configuredKey).
  void setConfiguredKeys(std::vector<NewKey> keys);
  // Starts the thread, which connects at once.
  void start();
  // True once the keys were loaded (false when `timeout` passed first: database down).
  bool waitForKeys(std::chrono::milliseconds timeout);
  // Writes the queued logs (giving up after `flushTimeout` when the database is down), then
  // ends the thread. Idempotent.
  void stop(std::chrono::milliseconds flushTimeout = std::chrono::seconds(5));

  // Any thread. `touchesKeys`: the job changes keys, so poll them right after it.
  void submit(Work work, Reply reply, bool touchesKeys = false);
  // Any thread: queues the records (moved out; `records` is left empty).
  void appendLogs(std::vector<LogRecord>& records);

  StoreStats stats() const;
  std::string kind() const { return kind_; }

 private:
  struct Job {
    Work work;
    Reply reply;
    bool touchesKeys = false;
  };
  using Clock = std::chrono::steady_clock;

  void run();
  void tryOpen();
  void markDown(const std::string& reason);
  void runJobs(std::vector<Job>& jobs);
  bool writeLogs(std::vector<LogRecord>& batch);
  void pollKeys();
  void syncConfiguredKeys(const std::vector<NewKey>& keys);

  std::unique_ptr<Store> store_;  // used only on the store thread
  const config::StorageConfig config_;
  const std::string kind_;
  KeysListener keysListener_;
  std::thread thread_;

  mutable std::mutex mutex_;  // guards everything below up to the store-thread-only part
  std::condition_variable wake_;
  std::condition_variable keysLoadedCv_;
  std::vector<Job> jobs_;
  // Request-log records in the order they came, kept as the batches the workers handed over
  // (a handover moves a whole vector in; no record is moved twice).
  class LogQueue {
   public:
    void push(std::vector<LogRecord>&& records);
    // Moves up to about `max` of the oldest records out (whole handovers while they fit).
    std::vector<LogRecord> take(size_t max);
    // Back in front, in order (a batch that could not be written).
    void putBack(std::vector<LogRecord>&& records);
    // Drops the oldest until at most `limit` are left; returns how many went.
    size_t trim(size_t limit);
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

   private:
    std::deque<std::vector<LogRecord>> batches_;
    size_t size_ = 0;
  };
  LogQueue logs_;
  bool stopping_ = false;
  bool pollNow_ = false;
  bool keysLoaded_ = false;
  std::optional<std::vector<NewKey>> configuredKeys_;  // null until setConfiguredKeys
  bool configuredDirty_ = false;                       // configuredKeys_ not yet synced
  Clock::time_point stopDeadline_;

  std::atomic<bool> available_{false};
  std::atomic<uint64_t> logsWritten_{0}, logsDropped_{0}, logBatches_{0}, jobsRun_{0}, jobsFailed_{0},
      outages_{0}, activeKeyCount_{0};

  // Store thread only.
  bool open_ = false;
  bool everOpened_ = false;
  std::string lastError_;
  std::chrono::milliseconds backoff_{100};
  Clock::time_point nextReconnect_{};
  Clock::time_point nextPoll_{};
  Clock::time_point nextFlush_{};
  int64_t keyVersion_ = 0;
  std::unordered_set<int64_t> activeIds_;  // for the active-key count
  // Row ids of the configured keys ever synced: a row is never deleted, so an id stays good.
  std::map<Digest, int64_t> configuredIds_;
};

}  // namespace flowguard::store
