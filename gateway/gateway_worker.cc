#include "gateway/gateway_worker.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "filters/filter_registry.h"
#include "filters/path_redaction.h"

namespace flowguard::gateway {

namespace {

core::ListenerSettings toSettings(const config::ListenerConfig& listener) {
  core::ListenerSettings settings;
  settings.name = listener.name;
  settings.host = listener.address.host;
  settings.port = listener.address.port;
  settings.maxHeaderBytes = listener.maxHeaderBytes;
  settings.maxHeaders = listener.maxHeaders;
  settings.maxRequestBody = listener.maxRequestBody;
  settings.headerTimeout = listener.headerTimeout;
  settings.idleTimeout = listener.idleTimeout;
  settings.bodyTimeout = listener.bodyTimeout;
  settings.writeHighWatermark = listener.bufferLimit;
  settings.forwardTrailers = listener.forwardTrailers;
  for (const auto& filter : listener.filters) {
    for (std::string& field : filters::secretFields(filter))
      settings.extraTrailerDeny.push_back(std::move(field));
  }
  settings.trustedProxies = listener.trustedProxies;
  settings.keepClientRequestId = listener.keepClientRequestId;
  return settings;
}

}  // namespace

GatewayWorkerState::WorkerGeneration::WorkerGeneration(core::Dispatcher& dispatcher,
                                                       std::shared_ptr<const Generation> generation,
                                                       const WorkerGeneration* previous,
                                                       GatewayWorkerState& worker)
    : shared(std::move(generation)),
      clusters(dispatcher, shared->clusters, previous ? &previous->clusters : nullptr),
      resources{dispatcher,
                clusters,
                *shared->config,
                worker.redis_.get(),
                worker.storeClient_.get(),
                worker.storedKeys_,
                &shared->summary,
                worker.registrations_.get()} {
  const config::Config& config = *shared->config;
  std::vector<std::string> keyPathPrefixes;
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    const auto& listener = config.listeners[l];
    for (auto& prefix : filters::keyPathPrefixes(listener)) keyPathPrefixes.push_back(std::move(prefix));
    auto chain = std::make_unique<core::FilterChainFactory>();
    for (size_t f = 0; f < listener.filters.size(); ++f) {
      chain->add(
          filters::createFilterFactory(listener.filters[f], listener, shared->filters[l][f], resources));
    }
    chain->setObserver(worker.requestLogger_.get());
    chains.push_back(std::move(chain));
  }
  if (worker.requestLogger_) worker.requestLogger_->setKeyPathPrefixes(std::move(keyPathPrefixes));
}

std::shared_ptr<const core::FilterChainFactory> GatewayWorkerState::chainFor(
    const std::shared_ptr<WorkerGeneration>& generation, size_t listener) {
  // Aliasing: points at the chain, owns (a share of) the whole generation.
  return std::shared_ptr<const core::FilterChainFactory>(generation, generation->chains[listener].get());
}

GatewayWorkerState::GatewayWorkerState(core::Dispatcher& dispatcher,
                                       std::shared_ptr<const Generation> generation,
                                       const ProcessServices& services)
    : dispatcher_(dispatcher), storedKeys_(services.storedKeys), registrations_(services.registrations) {
  if (services.redis != nullptr) {
    redis_ = std::make_unique<filters::RedisRateLimiter>(dispatcher.loop(), *services.redis);
    redis_->start();
  }
  if (services.store != nullptr) {
    storeClient_ = std::make_unique<store::StoreClient>(dispatcher.loop(), *services.store);
    if (services.requestLog) requestLogger_ = std::make_unique<filters::RequestLogger>(*storeClient_);
  }
  generation_ = std::make_shared<WorkerGeneration>(dispatcher, std::move(generation), nullptr, *this);
  const config::Config& config = *generation_->shared->config;
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    auto context = std::make_shared<core::ListenerContext>();
    context->settings = toSettings(config.listeners[l]);
    context->filterChain = chainFor(generation_, l);
    context->connectionLimit = generation_->shared->connectionLimits[l];
    context->overload = generation_->shared->overload;
    auto listener = std::make_unique<core::Listener>(dispatcher, context);
    listeners_.push_back(
        ActiveListener{config.listeners[l].address, std::move(context), std::move(listener)});
  }
}

GatewayWorkerState::~GatewayWorkerState() = default;

bool GatewayWorkerState::start(std::string& error) {
  for (auto& active : listeners_) {
    if (active.listener->start() != 0) {
      error = active.listener->error();
      return false;
    }
  }
  return true;
}

void GatewayWorkerState::apply(std::shared_ptr<const Generation> generation, ListenSockets sockets) {
  std::shared_ptr<WorkerGeneration> next;
  try {
    next = std::make_shared<WorkerGeneration>(dispatcher_, std::move(generation), generation_.get(), *this);
  } catch (const std::exception& e) {
    fmt::print(stderr, "flowguard: reload: a worker kept the running config: {}\n", e.what());
    for (auto& [address, fd] : sockets) ::close(fd);
    return;
  }
  const config::Config& config = *next->shared->config;
  std::vector<ActiveListener> listeners;
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    const config::ListenerConfig& listenerConfig = config.listeners[l];
    auto same = std::find_if(listeners_.begin(), listeners_.end(), [&](const ActiveListener& a) {
      return a.listener && a.address == listenerConfig.address;
    });
    if (same != listeners_.end()) {
      // Same socket, same connections; new settings and chain from the next request on.
      same->context->settings = toSettings(listenerConfig);
      same->context->filterChain = chainFor(next, l);
      same->context->connectionLimit = next->shared->connectionLimits[l];
      same->context->overload = next->shared->overload;
      listeners.push_back(std::move(*same));
      continue;
    }
    auto context = std::make_shared<core::ListenerContext>();
    context->settings = toSettings(listenerConfig);
    context->filterChain = chainFor(next, l);
    context->connectionLimit = next->shared->connectionLimits[l];
    context->overload = next->shared->overload;
    auto listener = std::make_unique<core::Listener>(dispatcher_, context);
    auto socket = sockets.find(listenerConfig.address.str());
    int rc = socket == sockets.end() ? listener->start() : listener->adopt(socket->second);
    if (socket != sockets.end()) sockets.erase(socket);
    if (rc != 0) {
      fmt::print(stderr, "flowguard: reload: listener {}: {}\n", listenerConfig.name, listener->error());
      continue;
    }
    listeners.push_back(ActiveListener{listenerConfig.address, std::move(context), std::move(listener)});
  }
  for (auto& [address, fd] : sockets) ::close(fd);  // not used after all
  // Listeners whose address is gone: no more connections; the open ones finish their
  // current exchange (with Connection: close) and close.
  for (auto& old : listeners_) {
    if (!old.listener) continue;  // moved into `listeners`
    old.listener->stop();
    old.context->connections.drainAll();
    retired_.push_back(old.context);
  }
  std::erase_if(retired_, [](const auto& weak) { return weak.expired(); });
  listeners_ = std::move(listeners);
  generation_ = std::move(next);
}

void GatewayWorkerState::drain() {
  for (auto& active : listeners_) {
    active.listener->stop();
    active.context->connections.drainAll();
  }
  for (auto& weak : retired_) {
    if (auto context = weak.lock()) context->connections.drainAll();
  }
}

bool GatewayWorkerState::drained() const {
  for (const auto& active : listeners_) {
    if (active.context->connections.size() != 0) return false;
  }
  for (const auto& weak : retired_) {
    if (auto context = weak.lock(); context && context->connections.size() != 0) return false;
  }
  return true;
}

void GatewayWorkerState::closeAll() {
  for (auto& active : listeners_) {
    active.listener->stop();
    active.context->connections.closeAll();
  }
  for (auto& weak : retired_) {
    if (auto context = weak.lock()) context->connections.closeAll();
  }
  generation_->clusters.closeAll();
  if (redis_) redis_->close();
  // Last: closing connections above may still log their requests.
  if (storeClient_) storeClient_->close();
}

}  // namespace flowguard::gateway
