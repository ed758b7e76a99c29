#include "filters/buffer/buffer.h"

#include <fmt/format.h>

namespace flowguard::filters::buffer {

namespace {

class Filter : public core::Filter {
 public:
  Filter(const Settings& settings, core::StatSet& stats) : settings_(settings), stats_(stats) {}

  uint8_t bodyPhases() const override { return core::kRequestBody; }

  core::FilterStatus onRequest() override {
    const core::RequestHead& head = callbacks().requestHead();
    if (head.framing == core::BodyFraming::None) return core::FilterStatus::Continue;
    if (head.framing == core::BodyFraming::ContentLength && head.contentLength > settings_.maxRequestBytes) {
      stats_.add(Stat::RequestsTooLarge);
      callbacks().sendLocalReply(
          413, fmt::format("request body of {} bytes is over the buffer filter's {}-byte limit",
                           head.contentLength, settings_.maxRequestBytes));
      return core::FilterStatus::Stop;
    }
    callbacks().setBufferLimit(settings_.maxRequestBytes);  // beyond it the chain answers 413
    reading_ = true;
    callbacks().startRequestBody();
    return core::FilterStatus::Stop;  // the rest of the chain runs once the body is here
  }

  core::DataStatus onRequestData(core::BodyChunk&, bool endStream) override {
    if (!reading_) return core::DataStatus::Continue;
    if (!endStream) return core::DataStatus::StopAndBuffer;
    bodyComplete();
    return core::DataStatus::Continue;
  }

  core::FilterStatus onRequestTrailers(core::HeaderMap&) override {
    if (reading_) bodyComplete();
    return core::FilterStatus::Continue;
  }

  void onComplete(const core::StreamInfo& info) override {
    // Still reading when a 413 went out: the chain found the body over the limit.
    if (reading_ && info.responseStatus == 413) stats_.add(Stat::RequestsTooLarge);
  }

 private:
  void bodyComplete() {
    reading_ = false;
    stats_.add(Stat::RequestsBuffered);
    callbacks().continueChain();  // the head goes on, and the whole body behind it
  }

  const Settings& settings_;
  core::StatSet& stats_;
  bool reading_ = false;
};

}  // namespace

std::shared_ptr<const Settings> parse(const YAML::Node& node, config::FilterParseContext& ctx) {
  config::YamlReader& r = ctx.reader;
  auto settings = std::make_shared<Settings>();
  r.checkKeys(node, "in buffer filter", {"name", "max_request_bytes"});
  if (auto max = config::YamlReader::find(node, "max_request_bytes")) {
    if (auto bytes = r.size(*max, "max_request_bytes", 1)) settings->maxRequestBytes = *bytes;
  }
  return settings;
}

nlohmann::json dump(const Settings& settings) {
  return {{"max_request_bytes", settings.maxRequestBytes}};
}

std::unique_ptr<core::FilterFactory> createFactory(const Settings& settings, FilterContext& context) {
  return std::make_unique<FilterFactoryOf<Filter, Settings>>(settings, context);
}

}  // namespace flowguard::filters::buffer
