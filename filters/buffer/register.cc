// The one place that makes the buffer filter known.
#include "filters/buffer/buffer.h"

namespace flowguard::filters::plugged {

void register_buffer() {
  registerFilter(FilterRegistration<buffer::Settings>{
      .name = "buffer",
      .parse = &buffer::parse,
      .createFactory = &buffer::createFactory,
      .dump = &buffer::dump,
      .stats = buffer::kStats,
      .perRouteKeys = {"max_request_bytes"},
  });
}

}  // namespace flowguard::filters::plugged
