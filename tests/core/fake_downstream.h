// A DownstreamStream that records every call the chain makes on the connection's side,
// for the filter-chain unit tests.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/filter_chain.h"

namespace flowguard::core {

// Every call the chain makes on the downstream side, in order.
class FakeDownstream final : public DownstreamStream {
 public:
  uv_loop_t* loop() override { return nullptr; }
  void startRequestBody() override { events.push_back("startRequestBody"); }
  void pauseRequestBody() override { events.push_back("pause"); }
  void resumeRequestBody() override { events.push_back("resume"); }
  void writeHeaders(ResponseHead& head, bool endStream) override {
    events.push_back(endStream ? "headers+end" : "headers");
    heads.push_back(head);
  }
  void writeData(std::string_view data, bool endStream) override {
    events.push_back(endStream ? "data+end" : "data");
    body.append(data);
  }
  void writeTrailers(const HeaderMap& trailers) override {
    events.push_back("trailers");
    lastTrailers = trailers;
  }
  size_t queuedBytes() const override { return queued; }
  void reset(std::string_view reason) override {
    events.push_back("reset");
    resetReasons.emplace_back(reason);
  }

  std::vector<std::string> events;
  std::vector<ResponseHead> heads;
  std::string body;
  HeaderMap lastTrailers;
  std::vector<std::string> resetReasons;
  size_t queued = 0;
};

}  // namespace flowguard::core

// Lets failed CHECKs on logs print their entries instead of "{?}".
template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& entries) {
    std::string out = "{";
    for (const auto& entry : entries) out += (out.size() > 1 ? ", " : "") + entry;
    out += "}";
    return out.c_str();
  }
};
