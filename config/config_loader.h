// Loads flowguard.yaml into a Config. Every problem is reported, not only the first, as
// "FILE:LINE:COL: message" so an operator can fix a file in one pass.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace flowguard::config {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (file unreadable)
  int column = 0;  // 1-based
  std::string message;
  std::string str() const;  // "file:line:col: message" (or "file: message")
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;
  // Problems that do not stop the file from loading ("FILE:LINE:COL: warning: ..."): the
  // gateway logs them at start and reload, `flowguard validate` prints them.
  std::vector<ConfigError> warnings;
  bool ok() const { return errors.empty(); }
};

// Reads and validates a file. ${VAR} and ${VAR:-default} in scalar values are expanded
// from the environment before typing (an unset VAR without default is an error).
LoadResult loadConfigFile(const std::string& path);

// The bytes of a config file, or nullopt with `error` set (unreadable, a directory...).
std::optional<std::string> readConfigFile(const std::string& path, ConfigError& error);

// Same as loadConfigFile for text already in memory; `sourceName` is used as FILE in errors.
LoadResult loadConfigText(const std::string& text, const std::string& sourceName);

}  // namespace flowguard::config
