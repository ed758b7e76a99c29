#include "loadgen/request_builder.h"

#include "core/http_message.h"

namespace flowguard::loadgen {

namespace {

bool userSetHeader(const Options& options, std::string_view name) {
  for (const std::string& h : options.headers) {
    std::string_view field(h);
    if (core::equalsIgnoreCase(field.substr(0, field.find(':')), name)) return true;
  }
  return false;
}

}  // namespace

std::string buildRequest(const Options& options, const std::string& key) {
  std::string out = options.method + " " + options.target.path + " HTTP/1.1\r\n";
  if (!userSetHeader(options, "Host")) out += "Host: " + options.target.hostHeader + "\r\n";
  for (const std::string& h : options.headers) out += h + "\r\n";
  if (!key.empty()) out += "X-API-Key: " + key + "\r\n";
  bool bodyMethod = options.method == "POST" || options.method == "PUT" || options.method == "PATCH";
  if ((!options.body.empty() || bodyMethod) && !userSetHeader(options, "Content-Length")) {
    out += "Content-Length: " + std::to_string(options.body.size()) + "\r\n";
  }
  out += "\r\n";
  out += options.body;
  return out;
}

std::vector<std::string> buildRequests(const Options& options) {
  std::vector<std::string> out;
  if (options.keys.empty()) {
    out.push_back(buildRequest(options, ""));
    return out;
  }
  out.reserve(options.keys.size());
  for (const std::string& key : options.keys) out.push_back(buildRequest(options, key));
  return out;
}

}  // namespace flowguard::loadgen
