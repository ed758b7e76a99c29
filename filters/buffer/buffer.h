// buffer: reads a request's whole body before the rest of the chain and the upstream see the
// request (nginx's proxy_request_buffering, Envoy's buffer filter). A client that uploads
// slowly then holds gateway memory, not an upstream connection and an upstream worker; a body
// over `max_request_bytes` gets 413 before anything goes upstream (at once when its
// Content-Length says so); and filters after it, such as an authorizer, may read the body
// whole. Requests without a body pass at no cost.
#pragma once

#include <cstdint>
#include <memory>

#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"

namespace flowguard::filters::buffer {

struct Settings : config::PluginSettingsOf<Settings> {
  uint64_t maxRequestBytes = 1 << 20;
  bool operator==(const Settings&) const = default;
};

enum class Stat { RequestsBuffered, RequestsTooLarge };
inline constexpr core::StatDecl kStats[] = {
    {"requests_buffered", "Request bodies read whole before the request went on."},
    {"requests_too_large", "Requests refused with 413: body over max_request_bytes."},
};

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dump(const Settings& settings);
std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context);

}  // namespace flowguard::filters::buffer
