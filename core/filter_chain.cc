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

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char lead = byte(i);
  size_t length = lead >= 0xf0 && lead <= 0xf4 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 && lead <= 0xdf ? 2 : 0;
  if (length == 0 || i + length > s.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  // Overlong 3/4-byte forms, UTF-16 surrogates and code points above U+10FFFF.
  if ((lead == 0xe0 && byte(i + 1) < 0xa0) || (lead == 0xed && byte(i + 1) >= 0xa0) ||
      (lead == 0xf0 && byte(i + 1) < 0x90) || (lead == 0xf4 && byte(i + 1) >= 0x90)) {
    return 0;
  }
  return length;
}

// The reason may quote a client's path, which need not be valid UTF-8: invalid bytes
// become U+FFFD so the body is always valid JSON.
void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      size_t length = utf8SequenceLength(s, i);
      if (length == 0) {
        out += "\\ufffd";
      } else {
        out.append(s.substr(i, length));
        i += length - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(u));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

ResponseHead localReplyHead(int status, std::string_view contentType, size_t bodySize) {
  ResponseHead head;
  head.status = status;
  // RFC 9110 8.6: no Content-Length in a 1xx or 204 (which has no content, so no type either).
  if (status == 204 || status < 200) return head;
  head.headers.add("content-type", contentType);
  head.headers.add("content-length", std::to_string(bodySize));
  head.framing = bodySize == 0 ? BodyFraming::None : BodyFraming::ContentLength;
  head.contentLength = bodySize;
  return head;
}

std::string localReplyBody(int status, std::string_view reason, std::string_view requestId) {
  std::string body = "{\"error\":";
  appendJsonString(body, reason);
  body += fmt::format(",\"status\":{},\"request_id\":", status);
  appendJsonString(body, requestId);
  body += "}";
  return body;
}

FilterChain::FilterChain(DownstreamStream& downstream, RequestHead& head, StreamInfo& info,
                         std::vector<std::unique_ptr<Filter>> filters, RequestObserver* observer,
                         std::shared_ptr<const FilterChainFactory> factory)
    : downstream_(downstream),
      head_(head),
      info_(info),
      factory_(std::move(factory)),
      filters_(std::move(filters)),
      observer_(observer) {
  slots_.reserve(filters_.size());  // no reallocation: filters keep references to slots
  for (size_t i = 0; i < filters_.size(); ++i) {
    slots_.emplace_back(*this, i);
    filters_[i]->setCallbacks(slots_[i]);
  }
}

FilterChain::~FilterChain() {
  complete();
}

void FilterChain::start() {
  iterate(0);
}

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
  continueFrom(stoppedAt_);
}

void FilterChain::continueFrom(size_t index) {
  // Only the filter the chain waits on may resume it; anything else is a late or
  // duplicate call and is ignored.
  if (!active() || !stopped_ || index != stoppedAt_) return;
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
    resetStream(info_.localReplyReason.empty() ? "local reply after response start" : info_.localReplyReason);
    return;
  }
  if (info_.localReplyReason.empty()) info_.localReplyReason = fmt::format("status {}", status);
  stopped_ = false;
  ResponseHead head = localReplyHead(status, contentType, body.size());
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
  if (!active()) return;  // a filter reset the stream from onResponseHeaders
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
  if (observer_ != nullptr) observer_->onRequestComplete(head_, info_);
}

}  // namespace flowguard::core
