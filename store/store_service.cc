#include "store/store_service.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>

namespace flowguard::store {

namespace {

constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Records per appendLogs call: big enough to amortise a transaction, small enough that one
// batch does not hold the thread (and the jobs behind it) for long.
constexpr size_t kLogBatch = 2000;

}  // namespace

StoreService::StoreService(std::unique_ptr<Store> store, const config::StorageConfig& config)
    : store_(std::move(store)), config_(config), kind_(store_->kind()) {}

StoreService::~StoreService() {
  stop(std::chrono::milliseconds(0));
}

void StoreService::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fg-store");  // for top -H, perf and the benchmarks
    run();
  });
}

bool StoreService::waitForKeys(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return keysLoadedCv_.wait_for(lock, timeout, [this] { return keysLoaded_; });
}

void StoreService::stop(std::chrono::milliseconds flushTimeout) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      stopDeadline_ = Clock::now() + flushTimeout;
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StoreService::submit(Work work, Reply reply, bool touchesKeys) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      jobs_.push_back(Job{std::move(work), std::move(reply), touchesKeys});
      wake_.notify_one();
      return;
    }
  }
  ++jobsFailed_;
  reply(StoreOutcome{StoreOutcome::Status::Unavailable, {}, "the gateway is shutting down"});
}

void StoreService::appendLogs(std::vector<LogRecord>& records) {
  if (records.empty()) return;
  bool full = false;
  {
    std::lock_guard lock(mutex_);
    logs_.push(std::move(records));
    logsDropped_ += logs_.trim(config_.logQueue);
    full = logs_.size() >= kLogBatch;
  }
  records = {};
  if (full) wake_.notify_one();
}

StoreStats StoreService::stats() const {
  StoreStats s;
  {
    std::lock_guard lock(mutex_);
    s.logsQueued = logs_.size();
  }
  s.available = available_.load();
  s.logsWritten = logsWritten_.load();
  s.logsDropped = logsDropped_.load();
  s.logBatches = logBatches_.load();
  s.jobs = jobsRun_.load();
  s.jobsFailed = jobsFailed_.load();
  s.outages = outages_.load();
  s.activeKeys = activeKeyCount_.load();
  return s;
}

// ---- the log queue -----------------------------------------------------------------------

void StoreService::LogQueue::push(std::vector<LogRecord>&& records) {
  if (records.empty()) return;
  size_ += records.size();
  batches_.push_back(std::move(records));
}

std::vector<LogRecord> StoreService::LogQueue::take(size_t max) {
  if (batches_.empty()) return {};
  std::vector<LogRecord> out = std::move(batches_.front());
  batches_.pop_front();
  while (!batches_.empty() && out.size() + batches_.front().size() <= max) {
    std::vector<LogRecord>& next = batches_.front();
    out.insert(out.end(), std::make_move_iterator(next.begin()), std::make_move_iterator(next.end()));
    batches_.pop_front();
  }
  size_ -= out.size();
  return out;
}

void StoreService::LogQueue::putBack(std::vector<LogRecord>&& records) {
  if (records.empty()) return;
  size_ += records.size();
  batches_.push_front(std::move(records));
}

size_t StoreService::LogQueue::trim(size_t limit) {
  size_t dropped = 0;
  while (size_ > limit) {
    std::vector<LogRecord>& oldest = batches_.front();
    const size_t excess = size_ - limit;
    if (oldest.size() <= excess) {
      size_ -= oldest.size();
      dropped += oldest.size();
      batches_.pop_front();
    } else {
      oldest.erase(oldest.begin(), oldest.begin() + static_cast<std::ptrdiff_t>(excess));
      size_ -= excess;
      dropped += excess;
    }
  }
  return dropped;
}

// ---- the store thread ------------------------------------------------------------------

void StoreService::run() {
  const auto now = Clock::now();
  nextReconnect_ = now;
  nextPoll_ = now;
  nextFlush_ = now + config_.flushInterval;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!open_ && Clock::now() >= nextReconnect_) {
      lock.unlock();
      tryOpen();
      lock.lock();
      if (open_ && configuredKeys_) configuredDirty_ = true;  // the database may have moved on
      continue;
    }
    // Before any log is written: those of configured keys need their rows' ids.
    if (open_ && configuredDirty_) {
      configuredDirty_ = false;
      const std::vector<NewKey> keys = *configuredKeys_;
      lock.unlock();
      syncConfiguredKeys(keys);
      lock.lock();
      continue;
    }
    // Jobs first: a client is waiting for each.
    if (!jobs_.empty()) {
      std::vector<Job> jobs;
      jobs.swap(jobs_);
      lock.unlock();
      runJobs(jobs);
      lock.lock();
      continue;
    }
    const auto t = Clock::now();
    if (open_ && (pollNow_ || t >= nextPoll_)) {
      pollNow_ = false;
      lock.unlock();
      pollKeys();
      lock.lock();
      nextPoll_ = Clock::now() + config_.keyPollInterval;
      continue;
    }
    const bool flushDue = t >= nextFlush_ || logs_.size() >= kLogBatch || stopping_;
    if (open_ && !logs_.empty() && flushDue) {
      std::vector<LogRecord> batch = logs_.take(kLogBatch);
      lock.unlock();
      const bool written = writeLogs(batch);
      lock.lock();
      if (!written) {
        // Back in front, in order; what no longer fits goes, oldest first.
        logs_.putBack(std::move(batch));
        logsDropped_ += logs_.trim(config_.logQueue);
      }
      if (logs_.size() < kLogBatch) nextFlush_ = Clock::now() + config_.flushInterval;
      continue;
    }
    if (stopping_ && (logs_.empty() || Clock::now() >= stopDeadline_)) {
      if (!logs_.empty()) {
        fmt::print(stderr, "flowguard: store: {} request-log records not written at shutdown ({})\n",
                   logs_.size(), open_ ? "timed out" : "database unavailable");
        logsDropped_ += logs_.trim(0);
      }
      break;
    }
    // Sleep until the next timed duty, or until woken by new work.
    Clock::time_point wakeAt = open_ ? nextPoll_ : nextReconnect_;
    if (open_ && !logs_.empty()) wakeAt = std::min(wakeAt, nextFlush_);
    if (stopping_) wakeAt = std::min(wakeAt, stopDeadline_);
    wake_.wait_until(lock, wakeAt, [this] {
      return !jobs_.empty() || pollNow_ || configuredDirty_ || logs_.size() >= kLogBatch ||
             (stopping_ && logs_.empty());
    });
  }
  available_ = false;
  // Anyone still waiting for keys gives up now.
  keysLoadedCv_.notify_all();
}

void StoreService::tryOpen() {
  try {
    store_->open();
    open_ = true;
    available_ = true;
    backoff_ = kMinBackoff;
    fmt::print(stderr, "flowguard: store: {} {}\n", kind_, everOpened_ ? "reconnected" : "ready");
    everOpened_ = true;
    lastError_.clear();
  } catch (const std::exception& e) {
    const std::string reason = e.what();
    if (reason != lastError_) {
      fmt::print(stderr, "flowguard: store: {} unavailable: {} (retrying with backoff)\n", kind_, reason);
    }
    lastError_ = reason;
    nextReconnect_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }
}

void StoreService::markDown(const std::string& reason) {
  if (!open_) return;
  open_ = false;
  available_ = false;
  ++outages_;
  lastError_ = reason;
  fmt::print(stderr, "flowguard: store: {} connection lost: {} (reconnecting)\n", kind_, reason);
  backoff_ = kMinBackoff;
  nextReconnect_ = Clock::now() + backoff_;
}

void StoreService::runJobs(std::vector<Job>& jobs) {
  for (Job& job : jobs) {
    ++jobsRun_;
    StoreOutcome outcome;
    if (!open_) {
      outcome.status = StoreOutcome::Status::Unavailable;
      outcome.error = lastError_.empty() ? std::string("database not connected") : lastError_;
    } else {
      try {
        outcome.value = job.work(*store_);
        // Before the reply: a client that registered a key may use it the moment it hears
        // back, and every worker of this gateway must know it by then.
        if (job.touchesKeys) pollKeys();
      } catch (const StoreUnavailable& e) {
        markDown(e.what());
        outcome.status = StoreOutcome::Status::Unavailable;
        outcome.error = e.what();
      } catch (const std::exception& e) {
        outcome.status = StoreOutcome::Status::Failed;
        outcome.error = e.what();
      }
    }
    if (outcome.status != StoreOutcome::Status::Ok) ++jobsFailed_;
    job.reply(std::move(outcome));
  }
}

void StoreService::setConfiguredKeys(std::vector<NewKey> keys) {
  {
    std::lock_guard lock(mutex_);
    configuredKeys_ = std::move(keys);
    configuredDirty_ = true;
  }
  wake_.notify_one();
}

void StoreService::syncConfiguredKeys(const std::vector<NewKey>& keys) {
  try {
    for (const StoredKey& row : store_->syncConfiguredKeys(keys, wallMs()))
      configuredIds_[row.digest] = row.id;
    std::lock_guard lock(mutex_);
    pollNow_ = true;  // rows may have changed: the key set and its count follow
  } catch (const StoreUnavailable& e) {
    markDown(e.what());  // synced again once reconnected (see run)
  } catch (const std::exception& e) {
    // Until the next reload or reconnect their requests are logged without a key id, so they
    // count in the log but not in the keys' usage.
    fmt::print(stderr, "flowguard: store: the keys of flowguard.yaml were not recorded: {}\n", e.what());
  }
}

bool StoreService::writeLogs(std::vector<LogRecord>& batch) {
  for (LogRecord& record : batch) {
    if (!record.configuredKey) continue;
    auto it = configuredIds_.find(*record.configuredKey);
    if (it != configuredIds_.end()) record.keyId = it->second;
  }
  try {
    store_->appendLogs(batch);
    logsWritten_ += batch.size();
    ++logBatches_;
    return true;
  } catch (const StoreUnavailable& e) {
    markDown(e.what());
  } catch (const std::exception& e) {
    // Not the connection: the batch itself is refused and would be forever. Say so and
    // count it as dropped rather than retrying it in a loop.
    fmt::print(stderr, "flowguard: store: {} request-log records refused: {}\n", batch.size(), e.what());
    logsDropped_ += batch.size();
    return true;
  }
  return false;
}

void StoreService::pollKeys() {
  std::vector<StoredKey> changed;
  try {
    changed = store_->keysChangedSince(keyVersion_);
  } catch (const StoreUnavailable& e) {
    markDown(e.what());
    return;
  } catch (const std::exception& e) {
    fmt::print(stderr, "flowguard: store: reading keys failed: {}\n", e.what());
    return;
  }
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = !keysLoaded_;
  }
  if (changed.empty() && !first) return;
  for (const StoredKey& key : changed) {
    keyVersion_ = std::max(keyVersion_, key.version);
    if (key.revokedAtMs) {
      activeIds_.erase(key.id);
    } else {
      activeIds_.insert(key.id);
    }
  }
  activeKeyCount_ = activeIds_.size();
  if (keysListener_) keysListener_(changed);
  if (first) {
    {
      std::lock_guard lock(mutex_);
      keysLoaded_ = true;
    }
    keysLoadedCv_.notify_all();
  }
}

}  // namespace flowguard::store
