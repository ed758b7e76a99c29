#include "admin/admin_server.h"

#include "admin/admin_filter.h"

namespace flowguard::admin {

AdminServer::AdminServer(uv_loop_t* loop, const config::Config& config, AdminStats& stats,
                         store::StoreService* store)
    : loop_(loop), config_(config), stats_(stats), dispatcher_(loop) {
  if (store != nullptr) storeClient_ = std::make_unique<store::StoreClient>(loop, *store);
  chain_.add(std::make_unique<AdminFilterFactory>(config, stats, storeClient_.get()));
  settings_.name = "admin";
  settings_.host = config.admin.address.host;
  settings_.port = config.admin.address.port;
  settings_.maxRequestBody = 64 * 1024;
  settings_.filterChain = &chain_;
  listener_ = std::make_unique<core::Listener>(dispatcher_, settings_, registry_);
}

AdminServer::~AdminServer() {
  close();
}

bool AdminServer::start() {
  if (listener_->start() != 0) {
    error_ = "admin: " + listener_->error();
    return false;
  }
  sampler_ = new uv_timer_t;
  uv_timer_init(loop_, sampler_);
  sampler_->data = this;
  uv_timer_start(
      sampler_, [](uv_timer_t* t) { static_cast<AdminServer*>(t->data)->stats_.sample(); }, 0, 1000);
  return true;
}

void AdminServer::close() {
  if (closed_) return;
  closed_ = true;
  listener_->stop();
  registry_.closeAll();
  if (storeClient_) storeClient_->close();
  if (sampler_ != nullptr) {
    uv_timer_stop(sampler_);
    core::closeAndDelete(sampler_);
    sampler_ = nullptr;
  }
  dispatcher_.close();
}

}  // namespace flowguard::admin
