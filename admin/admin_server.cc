#include "admin/admin_server.h"

#include "admin/admin_filter.h"

namespace flowguard::admin {

AdminServer::AdminServer(uv_loop_t* loop, const config::LiveConfig& live, AdminStats& stats,
                         store::StoreService* store, ReloadFunction reload, const std::string& token)
    : loop_(loop), stats_(stats), dispatcher_(loop), context_(std::make_shared<core::ListenerContext>()) {
  if (store != nullptr) storeClient_ = std::make_unique<store::StoreClient>(loop, *store);
  auto chain = std::make_shared<core::FilterChainFactory>();
  chain->add(std::make_unique<AdminFilterFactory>(live, stats, storeClient_.get(), std::move(reload), token));
  context_->filterChain = std::move(chain);
  core::ListenerSettings& settings = context_->settings;
  settings.name = "admin";
  settings.host = live.config->admin.address.host;
  settings.port = live.config->admin.address.port;
  settings.maxRequestBody = 64 * 1024;
  listener_ = std::make_unique<core::Listener>(dispatcher_, context_);
}

AdminServer::~AdminServer() {
  close();
}

bool AdminServer::start() {
  if (listener_->start() != 0) {
    error_ = "admin: " + listener_->error();
    return false;
  }
  sampler_ = core::UvHandle<uv_timer_t>(loop_, this, uv_timer_init);
  uv_timer_start(
      sampler_.get(), [](uv_timer_t* t) { static_cast<AdminServer*>(t->data)->stats_.sample(); }, 0, 1000);
  return true;
}

void AdminServer::close() {
  if (closed_) return;
  closed_ = true;
  listener_->stop();
  context_->connections.closeAll();
  if (storeClient_) storeClient_->close();
  sampler_.reset();
  dispatcher_.close();
}

}  // namespace flowguard::admin
