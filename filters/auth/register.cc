// The one place that makes the auth filter known (filters/README.md).
#include "filters/auth/auth.h"

namespace flowguard::filters::plugged {

namespace {

std::unique_ptr<core::FilterFactory> createFactory(const AuthSettings& settings, FilterContext& context) {
  return std::make_unique<AuthFilterFactory>(settings, context);
}

std::shared_ptr<AuthKeys> createState(const AuthSettings& settings) {
  return std::make_shared<AuthKeys>(settings);
}

void refreshState(AuthKeys& keys, const AuthSettings& after) {
  keys.registry.publish(staticKeySnapshot(after));
}

std::vector<std::string> secretFields(const AuthSettings& settings) {
  return {settings.header};
}

}  // namespace

void register_auth() {
  registerFilter(FilterRegistration<AuthSettings, AuthKeys>{
      .name = kAuthName,
      .parse = &parseAuth,
      .createFactory = &createFactory,
      .dump = &dumpAuth,
      .createState = &createState,
      .refreshState = &refreshState,
      .checkChain = &checkAuthChain,
      .secretFields = &secretFields,
  });
}

}  // namespace flowguard::filters::plugged
