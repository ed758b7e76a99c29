// The one place that makes the headers filter known (filters/README.md).
#include "filters/headers/headers.h"

namespace flowguard::filters::plugged {

void register_headers() {
  registerFilter(FilterRegistration<headers::Settings>{
      .name = "headers",
      .parse = &headers::parse,
      .createFactory = &headers::createFactory,
      .dump = &headers::dump,
      .stats = headers::kStats,
      .perRouteKeys = {"request", "response"},
  });
}

}  // namespace flowguard::filters::plugged
