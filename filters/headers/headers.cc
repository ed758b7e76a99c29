#include "filters/headers/headers.h"

#include <fmt/format.h>

#include <array>

namespace flowguard::filters::headers {

namespace {

// Request headers that carry credentials: a template must not copy them into another field,
// where strip_header would not remove them and logs would show them.
bool carriesCredentials(std::string_view name) {
  for (std::string_view secret : {"authorization", "proxy-authorization", "cookie", "x-api-key"}) {
    if (core::equalsIgnoreCase(name, secret)) return true;
  }
  return false;
}

std::string templateText(const ValueTemplate& value) {
  std::string out;
  for (const ValueTemplate::Segment& s : value.segments) {
    switch (s.kind) {
      case ValueTemplate::Kind::Literal:
        for (char c : s.text) out += c == '%' ? std::string("%%") : std::string(1, c);
        break;
      case ValueTemplate::Kind::RequestHeader:
        out += "%REQ(" + s.text + ")%";
        break;
      case ValueTemplate::Kind::ClientIp:
        out += "%CLIENT_IP%";
        break;
      case ValueTemplate::Kind::RequestId:
        out += "%REQUEST_ID%";
        break;
      case ValueTemplate::Kind::ApiKeyName:
        out += "%API_KEY_NAME%";
        break;
      case ValueTemplate::Kind::UpstreamHost:
        out += "%UPSTREAM_HOST%";
        break;
    }
  }
  return out;
}

// /config_dump shows what the filter writes, except the values of credential headers (an
// upstream's `Authorization: Bearer ...` set here is a secret like any other).
nlohmann::json editsJson(const HeaderEdits& edits) {
  auto shown = [](const std::string& name, const ValueTemplate& value) {
    return carriesCredentials(name) ? std::string("********") : templateText(value);
  };
  nlohmann::json set = nlohmann::json::object();
  for (const auto& [name, value] : edits.set) set[name] = shown(name, value);
  nlohmann::json add = nlohmann::json::object();
  for (const auto& [name, value] : edits.add) add[name] = shown(name, value);
  return {{"remove", edits.remove}, {"set", std::move(set)}, {"add", std::move(add)}};
}

// One side's `set:`/`add:` map or `remove:` list.
void parseEdits(config::YamlReader& r, const YAML::Node& node, std::string_view side, HeaderEdits& out,
                bool& ok) {
  const bool response = side == "response";
  if (!r.expectMap(node, fmt::format("'{}'", side))) {
    ok = false;
    return;
  }
  r.checkKeys(node, fmt::format("in headers {}", side), {"set", "add", "remove"});
  auto checkName = [&](const YAML::Node& at, const std::string& name) {
    if (!core::isToken(name)) {
      r.error(at, fmt::format("'{}' is not a header name (letters, digits and !#$%&'*+-.^_`|~)", name));
      ok = false;
      return false;
    }
    if (std::string_view why = reservedBecause(name); !why.empty()) {
      r.error(at, fmt::format("{} header '{}' cannot be edited: {}", side, name, why));
      ok = false;
      return false;
    }
    return true;
  };
  if (auto remove = config::YamlReader::find(node, "remove")) {
    if (r.expectList(*remove, "'remove'")) {
      for (const YAML::Node& item : *remove) {
        auto name = r.string(item, "remove entry");
        if (!name) {
          ok = false;
        } else if (checkName(item, *name)) {
          out.remove.push_back(std::move(*name));
        }
      }
    } else {
      ok = false;
    }
  }
  for (std::string_view op : {"set", "add"}) {
    auto map = config::YamlReader::find(node, op);
    if (!map) continue;
    if (!r.expectMap(*map, fmt::format("'{}'", op))) {
      ok = false;
      continue;
    }
    auto& target = op == "set" ? out.set : out.add;
    for (const auto& entry : *map) {
      auto name = r.string(entry.first, fmt::format("{} header name", op));
      auto text = r.string(entry.second, fmt::format("{} value", op));
      if (!name || !text) {
        ok = false;
        continue;
      }
      if (!checkName(entry.first, *name)) continue;
      std::string error;
      auto value = ValueTemplate::parse(*text, response, error);
      if (!value) {
        r.error(entry.second, fmt::format("value of '{}': {}", *name, error));
        ok = false;
        continue;
      }
      target.emplace_back(std::move(*name), std::move(*value));
    }
  }
}

class Filter : public core::Filter {
 public:
  Filter(const Settings& settings, core::StatSet& stats) : settings_(settings), stats_(stats) {}

  core::FilterStatus onRequest() override {
    if (!settings_.request.empty()) {
      core::RequestHead& head = callbacks().requestHead();
      settings_.request.apply(head.headers, head, callbacks().streamInfo(), values_);
      stats_.add(Stat::RequestsEdited);
    }
    return core::FilterStatus::Continue;
  }

  core::FilterStatus onResponseHeaders(core::ResponseHead& head, bool) override {
    if (settings_.response.empty()) return core::FilterStatus::Continue;
    settings_.response.apply(head.headers, callbacks().requestHead(), callbacks().streamInfo(), values_);
    stats_.add(Stat::ResponsesEdited);
    return core::FilterStatus::Continue;
  }

 private:
  const Settings& settings_;
  core::StatSet& stats_;
  std::vector<std::string> values_;  // rendered values, reused by both phases
};

}  // namespace

std::string_view reservedBecause(std::string_view name) {
  struct Reserved {
    std::string_view name;
    std::string_view why;
  };
  static constexpr std::array<Reserved, 10> kReserved{{
      {"content-length", "it frames the body"},
      {"transfer-encoding", "it frames the body"},
      {"trailer", "it announces the body's trailer fields"},
      {"connection", "it is hop-by-hop (RFC 9110 7.6.1): each side of the gateway has its own"},
      {"keep-alive", "it is hop-by-hop (RFC 9110 7.6.1)"},
      {"proxy-connection", "it is hop-by-hop"},
      {"te", "it is hop-by-hop (RFC 9110 7.6.1)"},
      {"upgrade", "it is hop-by-hop (RFC 9110 7.6.1)"},
      {"host", "routing and the upstream's virtual host depend on it"},
      {"expect", "the gateway answers 100-continue itself"},
  }};
  for (const Reserved& r : kReserved) {
    if (core::equalsIgnoreCase(name, r.name)) return r.why;
  }
  return {};
}

std::optional<ValueTemplate> ValueTemplate::parse(std::string_view text, bool response, std::string& error) {
  ValueTemplate out;
  auto literal = [&](std::string_view piece) {
    if (out.segments.empty() || out.segments.back().kind != Kind::Literal) out.segments.push_back({});
    out.segments.back().text.append(piece);
  };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      error = "a header value cannot hold control characters (CR, LF, NUL...)";
      return std::nullopt;
    }
  }
  size_t i = 0;
  while (i < text.size()) {
    const size_t percent = text.find('%', i);
    if (percent == std::string_view::npos) {
      literal(text.substr(i));
      break;
    }
    literal(text.substr(i, percent - i));
    if (percent + 1 < text.size() && text[percent + 1] == '%') {
      literal("%");
      i = percent + 2;
      continue;
    }
    const size_t close = text.find('%', percent + 1);
    if (close == std::string_view::npos) {
      error =
          fmt::format("'%' at offset {} opens a variable that is not closed (write %% for a '%')", percent);
      return std::nullopt;
    }
    const std::string_view name = text.substr(percent + 1, close - percent - 1);
    Segment segment;
    if (name == "CLIENT_IP") {
      segment.kind = Kind::ClientIp;
    } else if (name == "REQUEST_ID") {
      segment.kind = Kind::RequestId;
    } else if (name == "API_KEY_NAME") {
      segment.kind = Kind::ApiKeyName;
    } else if (name == "UPSTREAM_HOST") {
      if (!response) {
        error = "%UPSTREAM_HOST% is known only once a host answered: use it in response headers";
        return std::nullopt;
      }
      segment.kind = Kind::UpstreamHost;
    } else if (name.starts_with("REQ(") && name.ends_with(")")) {
      segment.kind = Kind::RequestHeader;
      segment.text = std::string(name.substr(4, name.size() - 5));
      if (!core::isToken(segment.text)) {
        error = fmt::format("'%{}%' does not name a header", name);
        return std::nullopt;
      }
      if (carriesCredentials(segment.text)) {
        error = fmt::format("'%{}%' would copy credentials into another header", name);
        return std::nullopt;
      }
    } else {
      error = fmt::format(
          "unknown variable '%{}%' (known: %REQ(name)%, %CLIENT_IP%, %REQUEST_ID%, %API_KEY_NAME%, "
          "%UPSTREAM_HOST%; %% is a literal '%')",
          name);
      return std::nullopt;
    }
    out.segments.push_back(std::move(segment));
    i = close + 1;
  }
  return out;
}

void ValueTemplate::render(const core::RequestHead& request, const core::StreamInfo& info,
                           std::string& out) const {
  out.clear();
  for (const Segment& s : segments) {
    switch (s.kind) {
      case Kind::Literal:
        out += s.text;
        break;
      case Kind::RequestHeader:
        out += request.headers.get(s.text);
        break;
      case Kind::ClientIp:
        out += info.downstreamAddress;
        break;
      case Kind::RequestId:
        out += info.requestId;
        break;
      case Kind::ApiKeyName:
        if (info.apiKey) out += info.apiKey->name;
        break;
      case Kind::UpstreamHost:
        out += info.upstreamHost;
        break;
    }
  }
}

void HeaderEdits::apply(core::HeaderMap& headers, const core::RequestHead& request,
                        const core::StreamInfo& info, std::vector<std::string>& values) const {
  // Every value is rendered before anything is removed, set or added: %REQ(x)% reads the
  // request as it came to this filter, so `set: { X-New: "%REQ(X-Old)%" }, remove: [X-Old]`
  // renames a header.
  values.resize(set.size() + add.size());
  size_t next = 0;
  for (const auto& [name, value] : set) value.render(request, info, values[next++]);
  for (const auto& [name, value] : add) value.render(request, info, values[next++]);
  for (const std::string& name : remove) headers.remove(name);
  next = 0;
  for (const auto& entry : set) {
    const std::string& value = values[next++];
    if (value.empty()) {
      headers.remove(entry.first);
    } else {
      headers.set(entry.first, value);
    }
  }
  for (const auto& entry : add) {
    const std::string& value = values[next++];
    if (!value.empty()) headers.add(entry.first, value);
  }
}

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx) {
  config::YamlReader& r = ctx.reader;
  auto settings = std::make_shared<Settings>();
  r.checkKeys(node, "in headers filter", {"name", "request", "response"});
  bool ok = true;
  auto request = config::YamlReader::find(node, "request");
  auto response = config::YamlReader::find(node, "response");
  if (!request && !response) {
    r.error(node, "headers filter needs 'request', 'response' or both (each with set, add or remove)");
    return nullptr;
  }
  if (request) parseEdits(r, *request, "request", settings->request, ok);
  if (response) parseEdits(r, *response, "response", settings->response, ok);
  return ok ? settings : nullptr;
}

nlohmann::json dump(const Settings& settings) {
  return {{"request", editsJson(settings.request)}, {"response", editsJson(settings.response)}};
}

std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context) {
  return std::make_unique<FilterFactoryOf<Filter, Settings>>(settings, context);
}

}  // namespace flowguard::filters::headers
