// The filter chain's phases driven by fuzz input: a chain of 2..5 scripted filters (which
// body phases each takes, whether it stops its heads, how it answers data) and then a
// sequence of events in any order: body bytes from the client, continueChain() from any
// filter, the terminal filter asking for the body, answering, streaming, trailers, local
// replies, watermarks, the client leaving. Checked: bytes arrive in order, whole and once,
// in both directions; at most one head goes downstream; no filter is called after its
// onComplete, which runs exactly once.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/filter_chain.h"
#include "tests/fuzz/fuzz_bodies.h"

namespace flowguard::fuzz {
namespace {

using namespace core;

void check(bool condition, std::string_view what) {
  if (!condition) throw FuzzInvariantError(std::string(what));
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct Downstream final : DownstreamStream {
  uv_loop_t* loop() override { return nullptr; }
  void startRequestBody() override { ++bodyStarts; }
  void pauseRequestBody() override {
    check(!paused, "pause while paused");
    paused = true;
  }
  void resumeRequestBody() override {
    check(paused, "resume while not paused");
    paused = false;
  }
  void writeHeaders(ResponseHead&, bool endStream) override {
    check(++heads == 1, "a second head downstream");
    check(!ended, "head after the end");
    ended = endStream;
  }
  void writeData(std::string_view data, bool endStream) override {
    check(heads == 1 && !ended, "data without a head or after the end");
    body.append(data);
    ended = endStream;
  }
  void writeTrailers(const HeaderMap&) override {
    check(heads == 1 && !ended, "trailers without a head or after the end");
    ended = true;
  }
  size_t queuedBytes() const override { return 0; }
  void reset(std::string_view) override { resets++; }

  int bodyStarts = 0;
  bool paused = false;
  int heads = 0;
  bool ended = false;
  std::string body;
  int resets = 0;
};

// Behaviour bits, from one input byte per filter.
struct Script {
  uint8_t phases;
  bool stopRequestHead;   // onRequest answers Stop
  bool startsBody;        // ...after asking for the body itself
  bool stopResponseHead;  // onResponseHeaders answers Stop
  uint8_t dataMode;       // 0 Continue, 1 buffer until the end, 2 buffer always, 3 copy (bytes())
};

class ScriptedFilter final : public Filter {
 public:
  ScriptedFilter(Script script, bool terminal) : script_(script), terminal_(terminal) {}
  uint8_t bodyPhases() const override { return script_.phases; }
  FilterStatus onRequest() override {
    alive();
    if (terminal_) return FilterStatus::Stop;
    if (script_.startsBody) callbacks().startRequestBody();
    return script_.stopRequestHead ? FilterStatus::Stop : FilterStatus::Continue;
  }
  DataStatus onRequestData(BodyChunk& data, bool endStream) override { return onData(data, endStream); }
  FilterStatus onRequestTrailers(HeaderMap&) override {
    alive();
    return FilterStatus::Continue;
  }
  void onRequestBody(std::string_view data, bool endStream, const HeaderMap*) override {
    alive();
    check(terminal_, "onRequestBody on a filter that is not the terminal one");
    check(!requestEnded, "request body after its end");
    requestBody.append(data);
    requestEnded = endStream;
  }
  FilterStatus onResponseHeaders(ResponseHead&, bool) override {
    alive();
    return script_.stopResponseHead ? FilterStatus::Stop : FilterStatus::Continue;
  }
  DataStatus onResponseData(BodyChunk& data, bool endStream) override { return onData(data, endStream); }
  FilterStatus onResponseTrailers(HeaderMap&) override {
    alive();
    return FilterStatus::Continue;
  }
  void onComplete(const StreamInfo&) override { check(++completes == 1, "onComplete twice"); }

  FilterCallbacks& cb() { return callbacks(); }
  std::string requestBody;
  bool requestEnded = false;
  int completes = 0;

 private:
  void alive() const { check(completes == 0, "a filter called after its onComplete"); }
  DataStatus onData(BodyChunk& data, bool endStream) {
    alive();
    switch (script_.dataMode) {
      case 1:
        return endStream ? DataStatus::Continue : DataStatus::StopAndBuffer;
      case 2:
        return DataStatus::StopAndBuffer;
      case 3:
        data.bytes();  // a copy, unchanged: exercises the chain's storage
        return DataStatus::Continue;
      default:
        return DataStatus::Continue;
    }
  }

  Script script_;
  bool terminal_;
};

}  // namespace

void fuzzFilterChain(const uint8_t* data, size_t size) {
  Input in(data, size);
  size_t count = 2 + in.byte() % 4;
  size_t limit = 1 + in.byte() * 4;
  FilterList list;
  std::vector<ScriptedFilter*> filters;
  for (size_t i = 0; i < count; ++i) {
    uint8_t b = in.byte();
    Script script{static_cast<uint8_t>(b & 3), (b & 4) != 0, (b & 8) != 0, (b & 16) != 0,
                  static_cast<uint8_t>((b >> 5) & 3)};
    auto filter = std::make_unique<ScriptedFilter>(script, i + 1 == count);
    filters.push_back(filter.get());
    list.push_back(std::move(filter));
  }
  Downstream downstream;
  RequestHead head;
  head.method = "POST";
  StreamInfo info;
  auto chain =
      std::make_unique<FilterChain>(downstream, head, info, std::move(list), nullptr, nullptr, limit);
  chain->start();

  std::string sentUp;  // request bytes the client sent
  bool sentUpEnd = false;
  std::string sentDown;  // response bytes the terminal filter sent
  bool headSent = false, downEnd = false;
  ScriptedFilter& terminal = *filters.back();
  uint8_t counter = 0;
  while (!in.empty() && !chain->completed()) {
    uint8_t op = in.byte();
    size_t who = in.byte() % count;
    std::string bytes(op >> 4, static_cast<char>('a' + counter++ % 26));
    switch (op & 15) {
      case 0:
      case 1:
        if (!sentUpEnd && downstream.bodyStarts > 0 && !downstream.paused) {
          sentUp += bytes;
          chain->deliverBody(bytes, false, nullptr);
        }
        break;
      case 2:
        if (!sentUpEnd && downstream.bodyStarts > 0 && !downstream.paused) {
          sentUpEnd = true;
          HeaderMap trailers;
          trailers.add("x-t", "1");
          sentUp += bytes;
          chain->deliverBody(bytes, true, (op & 16) ? &trailers : nullptr);
        }
        break;
      case 3:
      case 4:
        filters[who]->cb().continueChain();
        break;
      case 5:
        terminal.cb().startRequestBody();
        break;
      case 6:
        if (!headSent) {
          headSent = true;
          ResponseHead response;
          response.framing = BodyFraming::Chunked;
          downEnd = (op & 16) != 0;
          terminal.cb().encodeHeaders(response, downEnd);
        }
        break;
      case 7:
      case 8:
        if (headSent && !downEnd) {
          downEnd = op == 8;
          sentDown += bytes;
          terminal.cb().encodeData(bytes, downEnd);
        }
        break;
      case 9:
        if (headSent && !downEnd) {
          downEnd = true;
          HeaderMap trailers;
          trailers.add("x-r", "1");
          terminal.cb().encodeTrailers(trailers);
        }
        break;
      case 10:
        filters[who]->cb().sendLocalReply(400 + who, "fuzz");
        break;
      case 11:
        terminal.cb().pauseRequestBody();
        break;
      case 12:
        terminal.cb().resumeRequestBody();
        break;
      case 13:
        chain->downstreamWatermark((op & 16) != 0);
        break;
      case 14:
        filters[who]->cb().setBufferLimit(1 + op);
        break;
      case 15:
        info.downstreamReset = true;
        chain->complete();
        break;
    }
    // Order and wholeness, both ways (no filter here changes bytes).
    check(sentUp.starts_with(terminal.requestBody), "request bytes reordered, duplicated or invented");
    if (terminal.requestEnded) check(terminal.requestBody == sentUp && sentUpEnd, "request ended short");
    if (downstream.heads > 0 && info.localReplyReason.empty()) {
      check(sentDown.starts_with(downstream.body), "response bytes reordered, duplicated or invented");
      if (downstream.ended && downEnd) check(downstream.body == sentDown, "response ended short");
    }
  }
  chain->complete();
  for (auto* filter : filters) check(filter->completes == 1, "onComplete not run exactly once");
}

}  // namespace flowguard::fuzz
