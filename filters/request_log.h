// Writes every request a listener finished (proxied, answered locally, or abandoned by the
// client) to the key store's request_log, through this worker's StoreClient: one LogRecord
// pushed into a buffer per request, no lock, no I/O on the worker.
#pragma once

#include <string>
#include <vector>

#include "core/filter_chain.h"
#include "store/store_client.h"

namespace flowguard::filters {

class RequestLogger final : public core::RequestObserver {
 public:
  explicit RequestLogger(store::StoreClient& client) : client_(client) {}
  void onRequestComplete(const core::RequestHead& head, const core::StreamInfo& info) override;
  // Route prefixes after which a path carries an API key (path_redaction.h), of every
  // listener of the current generation; set again at each reload.
  void setKeyPathPrefixes(std::vector<std::string> prefixes) { keyPathPrefixes_ = std::move(prefixes); }

  // What a finished request looks like in request_log (exposed for tests).
  static store::LogRecord record(const core::RequestHead& head, const core::StreamInfo& info,
                                 const std::vector<std::string>& keyPathPrefixes = {});

 private:
  store::StoreClient& client_;
  std::vector<std::string> keyPathPrefixes_;
};

}  // namespace flowguard::filters
