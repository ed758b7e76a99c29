#include "loadgen/worker.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace flowguard::loadgen {

namespace {

uint64_t toMicros(uint64_t ns) {
  return ns / 1000;
}

uint64_t msUntil(uint64_t nowNs, uint64_t targetNs) {
  // Rounded up: a timer that fires early would only find nothing due and re-arm.
  return targetNs > nowNs ? (targetNs - nowNs + 999'999) / 1'000'000 : 0;
}

}  // namespace

Worker::Worker(WorkerPlan plan, ThreadStats& stats)
    : plan_(std::move(plan)),
      stats_(stats),
      picker_(plan_.keyDist, plan_.zipfExponent, plan_.keyCount, 0x9e3779b97f4a7c15ULL * (plan_.index + 1),
              plan_.index) {}

Worker::~Worker() = default;

const std::string& Worker::requestBytes(int key) const {
  return (*plan_.requests)[key < 0 ? 0 : static_cast<size_t>(key)];
}

uint64_t Worker::dueOf(uint64_t k) const {
  return plan_.startNs + static_cast<uint64_t>(std::llround(static_cast<double>(k) * 1e9 / plan_.rate));
}

void Worker::run() {
  uv_loop_init(&loop_);
  tick_ = core::UvHandle<uv_timer_t>(&loop_, this, uv_timer_init);
  end_ = core::UvHandle<uv_timer_t>(&loop_, this, uv_timer_init);
  {
    std::lock_guard<std::mutex> lock(stopMutex_);  // stop() reads it from other threads
    stop_ = core::UvHandle<uv_async_t>(&loop_, this, uv_async_init, onStop);
  }
  running_.store(true, std::memory_order_release);

  uint64_t now = uv_hrtime();
  auto unixNow = std::chrono::system_clock::now().time_since_epoch();
  unixOffsetNs_ =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(unixNow).count()) - now;
  if (plan_.endNs != 0) uv_timer_start(end_.get(), onEnd, msUntil(now, plan_.endNs), 0);
  connections_.reserve(plan_.connections);
  for (unsigned i = 0; i < plan_.connections; ++i) {
    connections_.push_back(std::make_unique<Connection>(*this, &loop_));
  }
  for (auto& c : connections_) c->connect();

  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  if (plan_.responseLog != nullptr) plan_.responseLog->flush(responseLogBuffer_);
  done_.store(true, std::memory_order_release);
}

void Worker::stop() {
  std::lock_guard<std::mutex> lock(stopMutex_);
  if (running() && stop_) uv_async_send(stop_.get());
}

void Worker::onStop(uv_async_t* async) {
  static_cast<Worker*>(async->data)->endSchedule();
}

void Worker::onEnd(uv_timer_t* timer) {
  static_cast<Worker*>(timer->data)->endSchedule();
}

void Worker::onTick(uv_timer_t* timer) {
  static_cast<Worker*>(timer->data)->dispatch();
}

void Worker::endSchedule() {
  if (exhausted_) return;
  exhausted_ = true;
  if (plan_.rate > 0 && plan_.endNs != 0) {
    // Requests that fell due before the end but never went out: the target (or this
    // machine) did not keep up with the rate.
    double dueByEnd = std::ceil(static_cast<double>(plan_.endNs - plan_.startNs) * plan_.rate / 1e9);
    uint64_t kLimit = std::min<uint64_t>(plan_.endIndex, static_cast<uint64_t>(dueByEnd));
    uint64_t jLimit = kLimit > plan_.index ? (kLimit - plan_.index + plan_.threads - 1) / plan_.threads : 0;
    if (jLimit > nextJ_) stats_.unsent += jLimit - nextJ_;
  }
  maybeFinish();
}

bool Worker::nextRequest(uint64_t nowNs, PendingRequest& out) {
  if (exhausted_) return false;
  if (plan_.rate > 0) {
    uint64_t k = plan_.index + nextJ_ * plan_.threads;
    if (k >= plan_.endIndex) {
      endSchedule();
      return false;
    }
    uint64_t due = dueOf(k);
    if (plan_.endNs != 0 && due >= plan_.endNs) {
      endSchedule();
      return false;
    }
    if (due > nowNs) return false;
    ++nextJ_;
    out.dueNs = due;
    out.measured = k >= plan_.firstMeasuredIndex;
  } else {
    if (nowNs < plan_.startNs) return false;
    if (plan_.endNs != 0 && nowNs >= plan_.endNs) {
      endSchedule();
      return false;
    }
    out.measured = nowNs >= plan_.measureStartNs;
    if (out.measured) {
      if (plan_.budget == 0) {
        endSchedule();
        return false;
      }
      --plan_.budget;
    }
    out.dueNs = nowNs;
  }
  out.sendNs = nowNs;
  out.key = picker_.next();
  return true;
}

void Worker::sendOn(Connection& connection, const PendingRequest& request, uint64_t nowNs) {
  ++busy_;
  if (request.measured) {
    ++stats_.sent;
    if (stats_.firstSendNs == 0) stats_.firstSendNs = nowNs;
    stats_.lastSendNs = nowNs;
    stats_.maxSendLagNs = std::max(stats_.maxSendLagNs, nowNs - request.dueNs);
  }
  connection.send(request);
}

void Worker::onIdle(Connection& connection) {
  uint64_t now = uv_hrtime();
  PendingRequest request;
  if (nextRequest(now, request)) {
    sendOn(connection, request, now);
    return;
  }
  idle_.push_back(&connection);
  if (exhausted_) {
    maybeFinish();
  } else {
    armTick(now);
  }
}

void Worker::dispatch() {
  uint64_t now = uv_hrtime();
  while (!idle_.empty() && !exhausted_) {
    Connection* c = idle_.back();
    if (c->state() != Connection::State::Idle) {  // stale entry: it closed meanwhile
      idle_.pop_back();
      continue;
    }
    PendingRequest request;
    if (!nextRequest(now, request)) break;
    idle_.pop_back();
    sendOn(*c, request, now);
  }
  if (exhausted_) {
    maybeFinish();
  } else {
    armTick(now);
  }
}

void Worker::armTick(uint64_t nowNs) {
  // Busy connections come back through onIdle; the timer only wakes idle ones.
  if (idle_.empty() || exhausted_ || finishing_) return;
  uint64_t next = plan_.rate > 0 ? dueOf(plan_.index + nextJ_ * plan_.threads) : plan_.startNs;
  uv_timer_start(tick_.get(), onTick, std::max<uint64_t>(msUntil(nowNs, next), 1), 0);
}

void Worker::onConnectFailed() {
  ++stats_.connectErrors;
  // A failed connect uses up the request it would have carried, so an unreachable target
  // still ends a -n run (with every request counted as an error).
  uint64_t now = uv_hrtime();
  PendingRequest request;
  if (nextRequest(now, request)) {
    ++busy_;
    if (request.measured) ++stats_.sent;
    onFailure(request, false, now);
  }
}

void Worker::recordMeasured(const PendingRequest& request, int status, uint64_t nowNs) {
  uint64_t correctedUs = toMicros(nowNs - request.dueNs);
  stats_.record(status, correctedUs, toMicros(nowNs - request.sendNs), request.key);
  stats_.lastDoneNs = std::max(stats_.lastDoneNs, nowNs);
  if (plan_.responseLog != nullptr) {
    // The clamped value is the one the histograms hold, so the log's lines add up to the mean.
    plan_.responseLog->add(responseLogBuffer_, unixOffsetNs_ + nowNs, request.key, status,
                           LatencyHistogram::clampToRange(correctedUs));
  }
}

void Worker::onResponse(const PendingRequest& request, int status, uint64_t nowNs) {
  --busy_;
  if (request.measured) recordMeasured(request, status, nowNs);
  maybeFinish();
}

void Worker::onFailure(const PendingRequest& request, bool timeout, uint64_t nowNs) {
  --busy_;
  if (request.measured) {
    if (timeout) ++stats_.timeouts;
    recordMeasured(request, 0, nowNs);
  }
  maybeFinish();
}

void Worker::onBytes(const PendingRequest& request, size_t n) {
  if (request.measured) stats_.addBytes(n);
}

void Worker::maybeFinish() {
  if (!exhausted_ || busy_ != 0 || finishing_) return;
  finishing_ = true;
  for (auto& c : connections_) c->shutdown();
  tick_.reset();
  end_.reset();
  std::lock_guard<std::mutex> lock(stopMutex_);
  stop_.reset();
}

}  // namespace flowguard::loadgen
