// The live downstream connections of one worker, so that shutdown can drain and then
// close them. Only touched on the worker's thread.
#pragma once

#include <cstddef>
#include <unordered_set>

namespace flowguard::core {

class DownstreamConnection;

class ConnectionRegistry {
 public:
  void add(DownstreamConnection* c) { live_.insert(c); }
  void remove(DownstreamConnection* c) { live_.erase(c); }
  size_t size() const { return live_.size(); }
  // Asks every connection to close once its current exchange is done.
  void drainAll();
  // Closes every connection now.
  void closeAll();
  bool draining() const { return draining_; }

 private:
  std::unordered_set<DownstreamConnection*> live_;
  bool draining_ = false;
};

}  // namespace flowguard::core
