// The one place that makes server_timing known: the config loader, the workers, reload and
// the admin listener all find it through this record.
#include "filters/server_timing/server_timing.h"

namespace flowguard::filters::plugged {

void register_server_timing() {
  registerFilter(FilterRegistration<server_timing::Settings>{
      .name = "server_timing",
      .parse = &server_timing::parse,
      .createFactory = &server_timing::createFactory,
      .dump = &server_timing::dump,
      .stats = server_timing::kStats,
      .perRouteKeys = {"metric", "description"},
  });
}

}  // namespace flowguard::filters::plugged
