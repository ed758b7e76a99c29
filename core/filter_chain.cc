#include "core/filter_chain.h"

#include <fmt/format.h>

#include <tuple>
#include <utility>

namespace flowguard::core {

FilterList FilterChainFactory::createFilters() const {
  FilterList filters;
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
                         FilterList filters, RequestObserver* observer,
                         std::shared_ptr<const FilterChainFactory> factory, size_t bufferLimit)
    : downstream_(downstream),
      head_(head),
      info_(info),
      factory_(std::move(factory)),
      filters_(std::move(filters)),
      observer_(observer),
      responseHeadsLeft_(filters_.size()) {
  slots_.reserve(filters_.size());  // no reallocation: filters keep references to slots
  for (size_t i = 0; i < filters_.size(); ++i) {
    uint8_t phases = filters_[i]->bodyPhases();
    // The terminal filter takes the request body through onRequestBody, never onRequestData.
    if (i + 1 == filters_.size()) phases &= ~kRequestBody;
    bodyFilters_ |= phases;
    slots_.emplace_back(*this, i, phases, bufferLimit);
    filters_[i]->setCallbacks(slots_[i]);
  }
}

FilterChain::~FilterChain() {
  complete();
}

void FilterChain::start() {
  iterate(0);
}

void FilterChain::setBufferLimit(size_t bytes) {
  for (auto& slot : slots_) slot.bufferLimit = bytes;
}

// ---- request head ---------------------------------------------------------------------------

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
    requestHeadsDone_ = i + 1;
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
  // Only a filter the chain waits on may resume it; anything else is a late or duplicate
  // call and is ignored.
  if (!active() || index >= slots_.size()) return;
  if (index == callingFilter_) {
    continuedDuringCall_ = true;  // applied when the phase returns
    return;
  }
  if (stopped_ && index == stoppedAt_) {
    if (iterating_) {
      continueRequested_ = true;  // answered inside its own onRequest: the loop goes on
      return;
    }
    stopped_ = false;
    requestHeadsDone_ = index + 1;
    iterate(index + 1);
    release(Direction::Request, index);  // body bytes that waited for this filter's head phase
    return;
  }
  if (waitsOnFilter(Direction::Request, index)) {
    Held& kept = held(Direction::Request, index);
    kept.buffering = kept.trailersStopped = false;
    release(Direction::Request, index);
    return;
  }
  if (responseHeadStopped_ && index + 1 == responseHeadsLeft_) {
    responseHeadStopped_ = false;
    if (!holds_.empty()) {
      Held& kept = held(Direction::Response, index);
      kept.buffering = kept.trailersStopped = false;
    }
    responseHeadsLeft_ = index;
    runResponseHeaders(index, *heldHead_, responseEndWithHead_);
    release(Direction::Response, index);
    return;
  }
  if (waitsOnFilter(Direction::Response, index)) {
    Held& kept = held(Direction::Response, index);
    kept.buffering = kept.trailersStopped = false;
    release(Direction::Response, index);
  }
}

// ---- local replies --------------------------------------------------------------------------

void FilterChain::sendLocalReply(int status, std::string_view reason) {
  if (!active()) return;
  if (info_.localReplyReason.empty()) info_.localReplyReason = std::string(reason);
  sendLocalReply(status, "application/json", localReplyBody(status, reason, info_.requestId));
}

void FilterChain::sendLocalReply(int status, std::string_view contentType, std::string body) {
  if (!active()) return;
  if (headWritten_) {
    // Too late for a clean answer: the client already has part of another response.
    resetStream(info_.localReplyReason.empty() ? "local reply after response start" : info_.localReplyReason);
    return;
  }
  if (info_.localReplyReason.empty()) info_.localReplyReason = fmt::format("status {}", status);
  stopped_ = false;
  if (responseStarted_) {
    replaceHeldResponse(status, contentType, std::move(body));
    return;
  }
  ResponseHead head = localReplyHead(status, contentType, body.size());
  encodeHeaders(head, body.empty());
  if (!body.empty()) encodeData(body, true);
}

void FilterChain::replaceHeldResponse(int status, std::string_view contentType, std::string body) {
  // Another answer's head waits in the chain (or is being run through it), and the filters
  // that saw it may hold its body: drop both, and answer past the filters.
  responseHeadStopped_ = false;
  heldHead_.reset();
  for (auto& holds : holds_) holds[1] = Held{};
  responseHeadsLeft_ = 0;
  headWritten_ = true;
  info_.responseStatus = status;
  ResponseHead head = localReplyHead(status, contentType, body.size());
  if (body.empty()) responseComplete_ = true;
  downstream_.writeHeaders(head, body.empty());
  if (body.empty() || completed_) return;
  info_.responseBodyBytes += body.size();
  responseComplete_ = true;
  downstream_.writeData(body, true);
}

// ---- request body ---------------------------------------------------------------------------

void FilterChain::startRequestBody() {
  if (!filters_.empty()) startRequestBodyFrom(terminal());
}

void FilterChain::startRequestBodyFrom(size_t index) {
  if (!active()) return;
  if (index == terminal() && !terminalWantsBody_) {
    terminalWantsBody_ = true;
    release(Direction::Request, index);  // what arrived before it asked
    if (holdPausedBody_) {
      holdPausedBody_ = false;
      updateRequestPause();
    }
  }
  if (!bodyReading_ && active()) {
    bodyReading_ = true;
    downstream_.startRequestBody();  // may deliver body bytes before it returns
  }
}

void FilterChain::pauseRequestBody() {
  filterPausedBody_ = true;
  updateRequestPause();
}

void FilterChain::resumeRequestBody() {
  filterPausedBody_ = false;
  updateRequestPause();
}

void FilterChain::updateRequestPause() {
  if (!active()) return;
  bool pause = filterPausedBody_ || holdPausedBody_;
  if (pause == downstreamPaused_) return;
  downstreamPaused_ = pause;
  if (pause) {
    downstream_.pauseRequestBody();
  } else {
    downstream_.resumeRequestBody();
  }
}

void FilterChain::deliverBody(std::string_view data, bool endStream, const HeaderMap* trailers) {
  if (completed_ || filters_.empty()) return;
  info_.requestBodyBytes += data.size();
  if (!(bodyFilters_ & kRequestBody) && terminalWantsBody_ && requestHeadsDone_ >= terminal() &&
      requestPushDepth_ == 0 && !holdsAny(Direction::Request, terminal())) {
    filters_.back()->onRequestBody(data, endStream, trailers);  // no filter looks: straight through
    return;
  }
  if (trailers != nullptr) requestTrailers_ = *trailers;
  if (requestPushDepth_ > 0) {
    // A filter made the connection read more while earlier bytes are still on their way:
    // these go after them.
    lateRequestBytes_.append(data);
    lateRequestEnd_ = lateRequestEnd_ || endStream;
    return;
  }
  push(Direction::Request, 0, Flow{data, false, endStream, endStream && trailers != nullptr});
}

// ---- response -------------------------------------------------------------------------------

void FilterChain::encodeHeaders(ResponseHead& head, bool endStream) {
  if (!active() || responseStarted_) return;
  responseStarted_ = true;
  runResponseHeaders(filters_.size(), head, endStream);
}

void FilterChain::runResponseHeaders(size_t count, ResponseHead& head, bool endStream) {
  for (size_t i = count; i-- > 0;) {
    auto [status, continued] = callFilter(i, [&] { return filters_[i]->onResponseHeaders(head, endStream); });
    if (!active() || headWritten_) return;  // reset, or a local reply took this answer's place
    if (status == FilterStatus::Stop && !continued) {
      responseHeadsLeft_ = i + 1;
      responseHeadStopped_ = true;
      responseEndWithHead_ = endStream;
      if (!heldHead_ || &*heldHead_ != &head) heldHead_ = std::move(head);
      return;
    }
    responseHeadsLeft_ = i;
  }
  headWritten_ = true;
  info_.responseStatus = head.status;
  if (endStream) responseComplete_ = true;
  downstream_.writeHeaders(head, endStream);
}

ResponseHead* FilterChain::heldResponseHeadAt(size_t index) {
  return responseHeadStopped_ && index + 1 == responseHeadsLeft_ ? &*heldHead_ : nullptr;
}

void FilterChain::encodeData(std::string_view data, bool endStream) {
  if (!active() || !responseStarted_) return;
  Flow flow{data, false, endStream, false};
  if (headWritten_ && !(bodyFilters_ & kResponseBody)) {
    writeResponse(flow);  // no filter looks: straight through
    return;
  }
  push(Direction::Response, filters_.size(), flow);
}

void FilterChain::encodeTrailers(const HeaderMap& trailers) {
  if (!active() || !responseStarted_) return;
  if (headWritten_ && !(bodyFilters_ & kResponseBody)) {
    responseComplete_ = true;
    downstream_.writeTrailers(trailers);
    return;
  }
  responseTrailers_ = trailers;
  push(Direction::Response, filters_.size(), Flow{{}, false, true, true});
}

void FilterChain::writeResponse(Flow flow) {
  if (!flow.bytes.empty() || (flow.end && !flow.trailers)) {
    info_.responseBodyBytes += flow.bytes.size();
    bool end = flow.end && !flow.trailers;
    if (end) responseComplete_ = true;
    downstream_.writeData(flow.bytes, end);
  }
  if (flow.trailers && !completed_) {
    responseComplete_ = true;
    downstream_.writeTrailers(*responseTrailers_);
  }
}

// ---- body bytes through the filters ---------------------------------------------------------
// Request bytes go through filters 0, 1, ... to the terminal filter; response bytes through
// filters n-1, ..., 0 to the connection. `position` counts in the direction's order: for a
// request the index of the next filter, for a response the number of filters still ahead.

void FilterChain::push(Direction dir, size_t position, Flow flow) {
  if (dir == Direction::Request) {
    ++requestPushDepth_;
    for (size_t i = position; i < terminal() && active(); ++i) {
      if (!passThrough(dir, i, flow)) {
        flow = {};
        break;
      }
    }
    if (active() && (flow.end || !flow.bytes.empty())) {
      if (!terminalWantsBody_) {
        keep(dir, terminal(), flow);  // until it asks (startRequestBody)
      } else if (holdsAny(dir, terminal())) {
        keep(dir, terminal(), flow, false);  // behind bytes still waiting there
        release(dir, terminal());
      } else {
        filters_.back()->onRequestBody(flow.bytes, flow.end, flow.trailers ? &*requestTrailers_ : nullptr);
      }
    }
    --requestPushDepth_;
    while (requestPushDepth_ == 0 && active() && (lateRequestEnd_ || !lateRequestBytes_.empty())) {
      std::string bytes;
      bytes.swap(lateRequestBytes_);
      bool end = std::exchange(lateRequestEnd_, false);
      push(dir, 0, Flow{bytes, false, end, end && requestTrailers_.has_value()});
    }
    return;
  }
  for (size_t i = position; i-- > 0;) {
    if (!active() || !passThrough(dir, i, flow)) return;
  }
  if (active()) writeResponse(flow);
}

bool FilterChain::passThrough(Direction dir, size_t i, Flow& flow) {
  bool request = dir == Direction::Request;
  bool headDone = request ? i < requestHeadsDone_ : i >= responseHeadsLeft_;
  if (!(slots_[i].phases & (request ? kRequestBody : kResponseBody))) {
    if (headDone && !holdsAny(dir, i)) return true;  // not its business: no call, no copy
    keep(dir, i, flow);
    return false;
  }
  Held& kept = held(dir, i);

  Filter& filter = *filters_[i];
  std::string& scratch = request ? requestScratch_ : responseScratch_;
  bool endStream = flow.end && !flow.trailers;
  bool inHeld = kept.buffering;  // a buffering filter sees everything kept so far
  DataStatus status = inHeld ? DataStatus::StopAndBuffer : DataStatus::Continue;
  bool continued = false;
  if (flow.bytes.empty() && !endStream) {
    // Only the trailers arrive: no data call, the trailers phase follows.
  } else if (inHeld) {
    kept.bytes.append(flow.bytes);
    BodyChunk chunk(kept.bytes);
    std::tie(status, continued) = callFilter(i, [&] {
      return request ? filter.onRequestData(chunk, endStream) : filter.onResponseData(chunk, endStream);
    });
  } else {
    BodyChunk chunk = flow.owned ? BodyChunk(scratch) : BodyChunk(flow.bytes, scratch);
    std::tie(status, continued) = callFilter(i, [&] {
      return request ? filter.onRequestData(chunk, endStream) : filter.onResponseData(chunk, endStream);
    });
    flow.bytes = chunk.view();
    flow.owned = chunk.owned();
  }
  if (!active()) return false;
  kept.buffering = status == DataStatus::StopAndBuffer && !continued;
  if (flow.trailers) {
    HeaderMap& trailers = request ? *requestTrailers_ : *responseTrailers_;
    auto [trailerStatus, trailersContinued] = callFilter(i, [&] {
      return request ? filter.onRequestTrailers(trailers) : filter.onResponseTrailers(trailers);
    });
    if (!active()) return false;
    continued = continued || trailersContinued;
    kept.buffering = false;  // the trailers end the body the filter waited for
    kept.trailersStopped = trailerStatus == FilterStatus::Stop && !continued;
  }
  if (!inHeld && headDone && !kept.waitingOnFilter() && !kept.any()) return true;

  if (inHeld) {
    kept.end = kept.end || flow.end;
    kept.trailers = kept.trailers || flow.trailers;
    flow = {};
  } else {
    keep(dir, i, flow, /*checkLimit=*/false);
  }
  if (headDone && !kept.waitingOnFilter()) {
    // It buffered and now lets go: everything kept moves on together.
    scratch.swap(kept.bytes);
    kept.bytes.clear();
    flow = Flow{scratch, true, kept.end, kept.trailers};
    kept.end = kept.trailers = false;
    return true;
  }
  bool headStoppedHere =
      request ? stopped_ && stoppedAt_ == i : responseHeadStopped_ && i + 1 == responseHeadsLeft_;
  if (continued && headStoppedHere) {
    continueFrom(i);  // continueChain() from a data phase lifts the head's stop too
    return false;
  }
  enforceLimit(dir, i);
  return false;
}

void FilterChain::keep(Direction dir, size_t i, Flow& flow, bool checkLimit) {
  Held& kept = held(dir, i);
  kept.bytes.append(flow.bytes);
  kept.end = kept.end || flow.end;
  kept.trailers = kept.trailers || flow.trailers;
  flow = {};
  if (checkLimit) enforceLimit(dir, i);
}

void FilterChain::enforceLimit(Direction dir, size_t i) {
  FilterSlot& slot = slots_[i];
  if (held(dir, i).bytes.size() <= slot.bufferLimit) return;
  if (dir == Direction::Request) {
    if (i == terminal()) {
      // Waiting for the terminal filter to ask: stop reading the client meanwhile.
      holdPausedBody_ = true;
      updateRequestPause();
      return;
    }
    sendLocalReply(413,
                   fmt::format("request body larger than the {}-byte filter buffer limit", slot.bufferLimit));
    return;
  }
  std::string reason =
      fmt::format("response body larger than the {}-byte filter buffer limit", slot.bufferLimit);
  if (headWritten_) {
    resetStream(reason);
  } else {
    sendLocalReply(500, reason);
  }
}

void FilterChain::release(Direction dir, size_t i) {
  if (!active()) return;
  bool request = dir == Direction::Request;
  if (!holdsAny(dir, i) || waitsOnFilter(dir, i)) return;
  Held& kept = held(dir, i);
  if (request ? (i != terminal() && i >= requestHeadsDone_) || (i == terminal() && !terminalWantsBody_)
              : i < responseHeadsLeft_) {
    return;  // its head phase has not finished
  }
  std::string bytes;
  bytes.swap(kept.bytes);
  Flow flow{bytes, false, kept.end, kept.trailers};
  kept.end = kept.trailers = false;
  if (request && i == terminal()) {
    ++requestPushDepth_;
    filters_.back()->onRequestBody(flow.bytes, flow.end, flow.trailers ? &*requestTrailers_ : nullptr);
    --requestPushDepth_;
    push(dir, terminal(), Flow{});  // sends on what arrived meanwhile
    return;
  }
  push(dir, request ? i + 1 : i, flow);
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
