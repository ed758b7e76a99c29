#include "upstream/health_checker.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <set>

#include <fmt/format.h>

#include "core/http1_parser.h"
#include "core/listener.h"
#include "upstream/health_state.h"

namespace flowguard::upstream {

namespace {

int64_t unixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool expected(const config::HealthCheckConfig& config, int status) {
  for (auto [low, high] : config.expectedStatuses) {
    if (status >= low && status <= high) return true;
  }
  return false;
}

}  // namespace

// One probe connection: connect, send the request, read until the response head.
struct ProbeAttempt {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  std::string request;
  std::string in;
  size_t reading = 0;  // bytes of `in` handed to libuv by the last alloc callback
  core::Http1Parser parser{core::Http1Parser::Kind::Response, core::Http1Parser::Limits{16 * 1024, 100}};
  HealthProbe* owner;  // null once the probe no longer waits for this attempt
};

class HealthProbe {
 public:
  HealthProbe(uv_loop_t* loop, std::shared_ptr<ClusterState> cluster, size_t hostIndex,
              const sockaddr_storage& address)
      : cluster_(std::move(cluster)),
        host_(*cluster_->hosts()[hostIndex]),
        config_(cluster_->config().healthCheck),
        address_(address),
        state_(config_.healthyThreshold, config_.unhealthyThreshold, host_.activeHealthy.load()) {
    uv_timer_init(loop, &interval_);
    interval_.data = this;
    uv_timer_init(loop, &timeout_);
    timeout_.data = this;
    request_ = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: flowguard-health-check\r\n"
                           "Connection: close\r\n\r\n",
                           config_.path, host_.address);
  }

  const ClusterState* cluster() const { return cluster_.get(); }

  uint64_t firstProbeSpreadMs() const {
    return std::max<uint64_t>(1, std::min<uint64_t>(1000, static_cast<uint64_t>(config_.interval.count())));
  }

  void start(uint64_t firstDelayMs) {
    uv_timer_start(&interval_, &HealthProbe::onInterval, firstDelayMs,
                   static_cast<uint64_t>(config_.interval.count()));
  }

  void stop() {
    abandonAttempt();
    auto onClosed = [](uv_handle_t* handle) {
      auto* self = static_cast<HealthProbe*>(handle->data);
      if (--self->openHandles_ == 0) delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&interval_), onClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timeout_), onClosed);
  }

 private:
  static void onInterval(uv_timer_t* timer) { static_cast<HealthProbe*>(timer->data)->begin(); }

  void begin() {
    if (attempt_ != nullptr) return;  // the previous probe is still running (timeout == interval)
    auto* attempt = new ProbeAttempt;
    attempt->owner = this;
    attempt->request = request_;
    uv_tcp_init(interval_.loop, &attempt->tcp);
    attempt->tcp.data = attempt;
    attempt->connect.data = attempt;
    attempt->write.data = attempt;
    attempt_ = attempt;
    uv_timer_start(&timeout_, &HealthProbe::onTimeout, static_cast<uint64_t>(config_.timeout.count()), 0);
    int rc = uv_tcp_connect(&attempt->connect, &attempt->tcp, reinterpret_cast<const sockaddr*>(&address_),
                            &HealthProbe::onConnect);
    if (rc != 0) finish(false, 0, uv_strerror(rc));
  }

  static void onConnect(uv_connect_t* req, int status) {
    auto* attempt = static_cast<ProbeAttempt*>(req->data);
    if (attempt->owner == nullptr) return;
    if (status != 0) {
      attempt->owner->finish(false, 0, fmt::format("connect: {}", uv_strerror(status)));
      return;
    }
    uv_buf_t buf = uv_buf_init(attempt->request.data(), attempt->request.size());
    uv_write(&attempt->write, reinterpret_cast<uv_stream_t*>(&attempt->tcp), &buf, 1, [](uv_write_t* w, int rc) {
      auto* a = static_cast<ProbeAttempt*>(w->data);
      if (rc != 0 && a->owner != nullptr) a->owner->finish(false, 0, fmt::format("write: {}", uv_strerror(rc)));
    });
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&attempt->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* a = static_cast<ProbeAttempt*>(h->data);
          size_t used = a->in.size();
          a->reading = 4096;
          a->in.resize(used + a->reading);
          *buf = uv_buf_init(a->in.data() + used, a->reading);
        },
        &HealthProbe::onRead);
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
    auto* attempt = static_cast<ProbeAttempt*>(stream->data);
    // Give back the part of the buffer libuv did not fill.
    attempt->in.resize(attempt->in.size() - attempt->reading + (nread > 0 ? static_cast<size_t>(nread) : 0));
    attempt->reading = 0;
    if (attempt->owner == nullptr) return;
    if (nread < 0) {
      attempt->owner->finish(false, 0, "connection closed before an answer");
      return;
    }
    auto result = attempt->parser.parse(attempt->in.data(), attempt->in.size());
    if (result.event == core::Http1Parser::Event::HeadComplete) {
      int status = attempt->parser.response().status;
      bool ok = expected(attempt->owner->config_, status);
      attempt->owner->finish(ok, status, ok ? "" : fmt::format("status {}", status));
    } else if (result.event == core::Http1Parser::Event::Error) {
      attempt->owner->finish(false, 0, "invalid answer: " + attempt->parser.errorReason());
    } else {
      attempt->in.erase(0, result.consumed);
    }
  }

  static void onTimeout(uv_timer_t* timer) {
    static_cast<HealthProbe*>(timer->data)->finish(false, 0, "timed out");
  }

  void abandonAttempt() {
    if (attempt_ == nullptr) return;
    attempt_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&attempt_->tcp),
             [](uv_handle_t* h) { delete static_cast<ProbeAttempt*>(h->data); });
    attempt_ = nullptr;
    uv_timer_stop(&timeout_);
  }

  void finish(bool success, int status, const std::string& reason) {
    abandonAttempt();
    host_.lastCheckUnixMs.store(unixMillis(), std::memory_order_relaxed);
    host_.lastCheckStatus.store(status, std::memory_order_relaxed);
    bool changed = state_.record(success);
    host_.checkFailuresInARow.store(state_.failuresInARow(), std::memory_order_relaxed);
    if (changed) {
      host_.activeHealthy.store(state_.healthy(), std::memory_order_relaxed);
      fmt::print(stderr, "flowguard: health: {} {} is now {}{}\n", cluster_->config().name, host_.address,
                 state_.healthy() ? "healthy" : "unhealthy", success ? "" : " (" + reason + ")");
    }
  }

  std::shared_ptr<ClusterState> cluster_;
  HostState& host_;
  const config::HealthCheckConfig& config_;
  sockaddr_storage address_;
  HealthState state_;
  std::string request_;
  uv_timer_t interval_;
  uv_timer_t timeout_;
  int openHandles_ = 2;
  ProbeAttempt* attempt_ = nullptr;
};

HealthChecker::HealthChecker(uv_loop_t* loop, const ClusterStates& clusters) : loop_(loop) {
  addProbes(clusters, {});
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::addProbes(const ClusterStates& clusters, const std::set<const ClusterState*>& skip) {
  std::mt19937_64 rng{std::random_device{}()};
  for (const auto& [name, cluster] : clusters) {
    const config::ClusterConfig& config = cluster->config();
    if (!config.healthCheck.enabled || skip.contains(cluster.get())) continue;
    for (size_t i = 0; i < config.hosts.size(); ++i) {
      auto* probe = new HealthProbe(loop_, cluster, i, cluster->address(i));
      probes_.push_back(probe);
      // The first probes are spread over up to one second (or one interval, if shorter).
      if (started_) probe->start(rng() % probe->firstProbeSpreadMs());
    }
  }
}

void HealthChecker::start() {
  started_ = true;
  std::mt19937_64 rng{std::random_device{}()};
  for (auto* probe : probes_) probe->start(rng() % probe->firstProbeSpreadMs());
}

void HealthChecker::update(const ClusterStates& clusters) {
  std::set<const ClusterState*> current;
  for (const auto& [name, cluster] : clusters) current.insert(cluster.get());
  std::set<const ClusterState*> kept;
  std::vector<HealthProbe*> probes;
  for (auto* probe : probes_) {
    if (current.contains(probe->cluster())) {
      kept.insert(probe->cluster());
      probes.push_back(probe);
    } else {
      probe->stop();  // frees itself
    }
  }
  probes_ = std::move(probes);
  addProbes(clusters, kept);
}

void HealthChecker::stop() {
  started_ = false;
  for (auto* probe : probes_) probe->stop();
  probes_.clear();
}

}  // namespace flowguard::upstream
