// headers: edits request headers on their way upstream and response headers on their way to
// the client, as Envoy's request_headers_to_add / response_headers_to_remove and nginx's
// proxy_set_header / add_header do:
//
//   - name: headers
//     request:  { set: { X-Env: prod, X-Client-IP: "%CLIENT_IP%" }, add: { Via: "1.1 gw" }, remove: [X-Debug]
//     } response: { set: { Strict-Transport-Security: "max-age=31536000" }, remove: [Server] }
//
// Each side renders its values, then removes, sets (replacing every field of that name) and adds
// (appending); values read the request as it reached the filter, so set + remove renames.
// Values may use %REQ(name)% (the request's header), %CLIENT_IP%, %REQUEST_ID%,
// %API_KEY_NAME% (after auth), %UPSTREAM_HOST% (responses only) and %% for a literal %. A value
// that comes out empty is not written (Envoy's default). Framing and hop-by-hop fields
// (Content-Length, Transfer-Encoding, Connection, Host...) cannot be touched: the gateway
// owns them, and editing them would desynchronise the two sides of a connection.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"

namespace flowguard::filters::headers {

// A header value with %VARIABLES%, parsed once at load time.
struct ValueTemplate {
  enum class Kind { Literal, RequestHeader, ClientIp, RequestId, ApiKeyName, UpstreamHost };
  struct Segment {
    Kind kind = Kind::Literal;
    std::string text;  // the literal, or the request header's name
    bool operator==(const Segment&) const = default;
  };
  std::vector<Segment> segments;

  // Parses `text`; on a mistake, returns nullopt and says why in `error`. `response`: the
  // template is for a response header (%UPSTREAM_HOST% is known only there).
  static std::optional<ValueTemplate> parse(std::string_view text, bool response, std::string& error);
  // The value for this request; `out` is cleared first.
  void render(const core::RequestHead& request, const core::StreamInfo& info, std::string& out) const;
  bool operator==(const ValueTemplate&) const = default;
};

struct HeaderEdits {
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, ValueTemplate>> set;
  std::vector<std::pair<std::string, ValueTemplate>> add;
  bool empty() const { return remove.empty() && set.empty() && add.empty(); }
  // Renders every value first (into `values`, reused), then removes, sets and adds.
  void apply(core::HeaderMap& headers, const core::RequestHead& request, const core::StreamInfo& info,
             std::vector<std::string>& values) const;
  bool operator==(const HeaderEdits&) const = default;
};

struct Settings : config::PluginSettingsOf<Settings> {
  HeaderEdits request;
  HeaderEdits response;
  bool operator==(const Settings&) const = default;
};

enum class Stat { RequestsEdited, ResponsesEdited };
inline constexpr core::StatDecl kStats[] = {
    {"requests_edited", "Requests whose headers the headers filter edited before they went upstream."},
    {"responses_edited", "Responses whose headers the headers filter edited."},
};

// Why the gateway keeps `name` to itself, or empty when a filter may edit it.
std::string_view reservedBecause(std::string_view name);

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx);
nlohmann::json dump(const Settings& settings);
std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context);

}  // namespace flowguard::filters::headers
