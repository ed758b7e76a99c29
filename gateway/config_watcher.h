// Watches flowguard.yaml and calls back, once things have settled, after it changed.
//
// The directory is watched, not the file: editors and deployment tools usually write a new
// file and rename it over the old one (vim, sed -i, Kubernetes' ConfigMap symlink swap),
// which a watch on the file itself would lose track of. Events for the file's name, and
// for the `..name` entries a ConfigMap swaps, start a short debounce; the callback runs
// once no event came for that long, so a save written in several pieces reloads once.
// Whether the content really changed is the callback's business.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <uv.h>

#include "core/uv_handle.h"

namespace flowguard::gateway {

class ConfigWatcher {
 public:
  ConfigWatcher(uv_loop_t* loop, std::string path, std::chrono::milliseconds debounce,
                std::function<void()> onChange);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // False (with error()) when the directory cannot be watched; the gateway then still
  // reloads on SIGHUP and POST /reload.
  bool start();
  const std::string& error() const { return error_; }
  // Closes the handles. Idempotent.
  void close();

 private:
  static void onEvent(uv_fs_event_t* handle, const char* filename, int events, int status);
  static void onSettled(uv_timer_t* timer);

  uv_loop_t* loop_;
  std::string directory_;
  std::string name_;
  std::chrono::milliseconds debounce_;
  std::function<void()> onChange_;
  core::UvHandle<uv_fs_event_t> event_;
  core::UvHandle<uv_timer_t> timer_;
  std::string error_;
};

}  // namespace flowguard::gateway
