// Short text forms of parsed HTTP pieces, for test traces and failure messages (the codec
// tests and the fuzz targets compare whole traces as strings).
#pragma once

#include <string>

#include "core/http_message.h"

namespace flowguard::test {

inline const char* framingName(core::BodyFraming f) {
  switch (f) {
    case core::BodyFraming::None: return "none";
    case core::BodyFraming::ContentLength: return "cl";
    case core::BodyFraming::Chunked: return "chunked";
    case core::BodyFraming::UntilClose: return "close";
  }
  return "?";
}

// "[name=value][name=value]" in order.
inline std::string describeFields(const core::HeaderMap& h) {
  std::string s;
  for (const core::Header& f : h) s += "[" + f.name + "=" + f.value + "]";
  return s;
}

}  // namespace flowguard::test
