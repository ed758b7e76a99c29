// The configuration in force and the story of the attempts to replace it (hot reload).
// Owned by the gateway's main thread and read there by the admin listener: no locks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_loader.h"

namespace flowguard::config {

struct ReloadAttempt {
  std::string at;       // ISO 8601 wall-clock time
  std::string trigger;  // "signal", "file" or "admin"
  bool ok = false;
  std::vector<std::string> errors;           // FILE:LINE:COL: message
  std::vector<std::string> warnings;         // FILE:LINE:COL: warning: message (the file loaded)
  std::vector<std::string> restartRequired;  // changed sections a reload does not apply
  uint64_t generation = 0;                   // the generation in force after the attempt
  double durationMs = 0;                     // read, check, and every worker switched over
};

struct LiveConfig {
  std::shared_ptr<const Config> config;
  uint64_t generation = 1;  // 1 = the file read at start-up, +1 per applied reload
  std::string loadedAt;     // when `config` came into force
  std::optional<ReloadAttempt> lastReload;
  uint64_t reloadsOk = 0;
  uint64_t reloadsFailed = 0;
  // Applied reloads by trigger ("signal", "file", "admin"), for /stats.
  std::map<std::string, uint64_t> reloadsOkByTrigger;
  // Saves the file watcher read back byte for byte as the config in force: no reload.
  uint64_t fileSavesUnchanged = 0;
};

// Top-level sections that differ between `running` and `next` but only take effect on a
// restart: the worker count, Redis and storage connections, the admin listener. A reload
// applies everything else and names these, so an operator is never left guessing.
std::vector<std::string> sectionsNeedingRestart(const Config& running, const Config& next);

// `next` as the running process can apply it: the restart-only sections are the running
// ones (so /config_dump shows what is in force). Errors, at the place in `next` that
// needs them, when a filter needs a section the running process does not have (a Redis
// rate limit without a Redis connection, a key-store route without a key store).
std::shared_ptr<const Config> applicableConfig(const Config& running, const Config& next,
                                               std::vector<ConfigError>& errors);

}  // namespace flowguard::config
