// The one place that makes ip_filter known (filters/README.md).
#include "filters/ip_filter/ip_filter.h"

namespace flowguard::filters::plugged {

void register_ip_filter() {
  registerFilter(FilterRegistration<ip_filter::Settings>{
      .name = "ip_filter",
      .parse = &ip_filter::parse,
      .createFactory = &ip_filter::createFactory,
      .dump = &ip_filter::dump,
      .stats = ip_filter::kStats,
      .perRouteKeys = {"allow", "deny"},
  });
}

}  // namespace flowguard::filters::plugged
