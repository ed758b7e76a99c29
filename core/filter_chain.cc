#include "core/filter_chain.h"

#include <fmt/format.h>

namespace flowguard::core {

std::vector<std::unique_ptr<Filter>> FilterChainFactory::createFilters() const {
  std::vector<std::unique_ptr<Filter>> filters;
  filters.reserve(factories_.size());
  for (const auto& factory : factories_) filters.push_back(factory->create());
  return filters;
}

namespace {

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

std::string localReplyBody(int status, std::string_view reason, std::string_view requestId) {
  std::string body = "{\"error\":";
  appendJsonString(body, reason);
  body += fmt::format(",\"status\":{},\"request_id\":", status);
  appendJsonString(body, requestId);
  body += "}";
  return body;
}

FilterChain::FilterChain(DownstreamStream& downstream, RequestHead& head, StreamInfo& info,
                         std::vector<std::unique_ptr<Filter>> filters)
    : downstream_(downstream), head_(head), info_(info), filters_(std::move(filters)) {
  for (auto& filter : filters_) filter->setCallbacks(*this);
}

FilterChain::~FilterChain() { complete(); }

void FilterChain::start() { iterate(0); }

void FilterChain::iterate(size_t from) {
  iterating_ = true;
  for (size_t i = from; i < filters_.size(); ++i) {
    if (!active() || responseStarted_) break;
    continueRequested_ = false;
    stoppedAt_ = i;
    stopped_ = true;
    FilterStatus status = filters_[i]->onRequest();
    if (status == FilterStatus::Stop && !continueRequested_) {
      iterating_ = false;
      return;  // the filter will call continueChain() or reply later
    }
    stopped_ = false;
  }
  stopped_ = false;
  iterating_ = false;
  if (active() && !responseStarted_ && !filters_.empty() && stoppedAt_ + 1 >= filters_.size()) {
    // Every filter, the terminal one included, said Continue without answering.
    sendLocalReply(500, "filter chain ended without a response");
  } else if (filters_.empty()) {
    sendLocalReply(500, "listener has no filters");
  }
}

void FilterChain::continueChain() {
  if (!active() || !stopped_) return;  // not waiting: a late or duplicate call
  if (iterating_) {
    continueRequested_ = true;  // answered inside its own onRequest: the loop goes on
    return;
  }
  stopped_ = false;
  iterate(stoppedAt_ + 1);
}

void FilterChain::sendLocalReply(int status, std::string_view reason) {
  if (!active()) return;
  if (info_.localReplyReason.empty()) info_.localReplyReason = std::string(reason);
  sendLocalReply(status, "application/json", localReplyBody(status, reason, info_.requestId));
}

void FilterChain::sendLocalReply(int status, std::string_view contentType, std::string body) {
  if (!active()) return;
  if (responseStarted_) {
    // Too late for a clean answer: the client already has part of another response.
    resetStream(info_.localReplyReason.empty() ? "local reply after response start"
                                               : info_.localReplyReason);
    return;
  }
  if (info_.localReplyReason.empty()) info_.localReplyReason = fmt::format("status {}", status);
  stopped_ = false;
  ResponseHead head;
  head.status = status;
  head.headers.add("content-type", contentType);
  head.headers.add("content-length", std::to_string(body.size()));
  head.framing = body.empty() ? BodyFraming::None : BodyFraming::ContentLength;
  head.contentLength = body.size();
  encodeHeaders(head, body.empty());
  if (!body.empty()) encodeData(body, true);
}

void FilterChain::startRequestBody() {
  if (active()) downstream_.startRequestBody();
}
void FilterChain::pauseRequestBody() {
  if (active()) downstream_.pauseRequestBody();
}
void FilterChain::resumeRequestBody() {
  if (active()) downstream_.resumeRequestBody();
}

void FilterChain::deliverBody(std::string_view data, bool endStream, const HeaderMap* trailers) {
  if (completed_ || filters_.empty()) return;
  info_.requestBodyBytes += data.size();
  filters_.back()->onRequestBody(data, endStream, trailers);
}

void FilterChain::encodeHeaders(ResponseHead& head, bool endStream) {
  if (!active() || responseStarted_) return;
  responseStarted_ = true;
  for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) (*it)->onResponseHeaders(head);
  info_.responseStatus = head.status;
  if (endStream) responseComplete_ = true;
  downstream_.writeHeaders(head, endStream);
}

void FilterChain::encodeData(std::string_view data, bool endStream) {
  if (!active() || !responseStarted_) return;
  info_.responseBodyBytes += data.size();
  if (endStream) responseComplete_ = true;
  downstream_.writeData(data, endStream);
}

void FilterChain::encodeTrailers(const HeaderMap& trailers) {
  if (!active() || !responseStarted_) return;
  responseComplete_ = true;
  downstream_.writeTrailers(trailers);
}

void FilterChain::downstreamWatermark(bool above) {
  if (completed_) return;
  for (auto& filter : filters_) filter->onDownstreamWatermark(above);
}

void FilterChain::resetStream(std::string_view reason) {
  if (completed_) return;
  if (info_.localReplyReason.empty()) info_.localReplyReason = std::string(reason);
  responseComplete_ = true;
  downstream_.reset(reason);
}

void FilterChain::complete() {
  if (completed_) return;
  completed_ = true;
  for (auto& filter : filters_) filter->onComplete(info_);
}

}  // namespace flowguard::core
