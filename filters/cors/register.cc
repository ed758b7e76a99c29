// The one place that makes the cors filter known (filters/README.md).
#include "filters/cors/cors.h"

namespace flowguard::filters::plugged {

void register_cors() {
  registerFilter(FilterRegistration<cors::Settings>{
      .name = "cors",
      .parse = &cors::parse,
      .createFactory = &cors::createFactory,
      .dump = &cors::dump,
      .stats = cors::kStats,
      .perRouteKeys = {"allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age",
                       "allow_credentials"},
  });
}

}  // namespace flowguard::filters::plugged
