#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <unordered_set>

#include <fmt/format.h>

#include "config/units.h"

namespace flowguard::config {

void YamlReader::error(const YAML::Node& at, std::string message) {
  if (at.IsDefined() && at.IsNull()) {
    auto key = emptyValueKeys_.find(identity(at));
    if (key != emptyValueKeys_.end()) return error(key->second, std::move(message));
  }
  error(location(at), std::move(message));
}

void YamlReader::markUnusable(const YAML::Node& node) {
  unusable_.insert(identity(node));
}

bool YamlReader::usable(const YAML::Node& node) const {
  return unusable_.count(identity(node)) == 0;
}

void YamlReader::noteEmptyValue(const YAML::Node& value, const YAML::Mark& keyMark) {
  emptyValueKeys_.emplace(identity(value), keyMark);
}

void YamlReader::error(const YAML::Mark& at, std::string message) {
  error(location(at), std::move(message));
}

void YamlReader::error(SourceLocation at, std::string message) {
  errors_.push_back(ConfigError{file_, at.line, at.column, std::move(message)});
}

void YamlReader::warning(SourceLocation at, std::string message) {
  warnings_.push_back(ConfigError{file_, at.line, at.column, "warning: " + std::move(message)});
}

SourceLocation YamlReader::location(const YAML::Node& node) {
  if (!node.IsDefined()) return {};
  return location(node.Mark());
}

SourceLocation YamlReader::location(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

std::string describeNode(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "no value";
}

bool YamlReader::expectMap(const YAML::Node& node, std::string_view what) {
  if (node.IsMap()) return true;
  if (!usable(node)) return false;
  error(node, fmt::format("{} must be a map, got {}", what, describeNode(node)));
  return false;
}

bool YamlReader::expectList(const YAML::Node& node, std::string_view what) {
  if (node.IsSequence()) return true;
  if (!usable(node)) return false;
  error(node, fmt::format("{} must be a list, got {}", what, describeNode(node)));
  return false;
}

void YamlReader::checkKeys(const YAML::Node& map, std::string_view context,
                           std::initializer_list<std::string_view> known) {
  const std::vector<std::string_view> candidates(known);
  std::unordered_set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: `it->` hands out a temporary proxy
    if (!key.IsScalar()) {
      error(key, fmt::format("keys {} must be strings, got {}", context, describeNode(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    // yaml-cpp keeps both entries of a repeated key and lookups see only the first; an
    // operator who edits the second would wonder why nothing changes.
    if (!seen.insert(name).second) {
      error(key, fmt::format("duplicate key '{}' {}", name, context));
      continue;
    }
    if (std::find(candidates.begin(), candidates.end(), name) != candidates.end()) continue;
    std::string_view suggestion = closestMatch(name, candidates);
    if (suggestion.empty()) {
      error(key, fmt::format("unknown key '{}' {}", name, context));
    } else {
      error(key, fmt::format("unknown key '{}' {} (did you mean '{}'?)", name, context, suggestion));
    }
  }
}

std::optional<YAML::Node> YamlReader::find(const YAML::Node& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
  }
  return std::nullopt;
}

std::optional<YAML::Node> YamlReader::require(const YAML::Node& map, std::string_view key,
                                              std::string_view context) {
  std::optional<YAML::Node> value = find(map, key);
  if (!value) error(map, fmt::format("missing required key '{}' {}", key, context));
  return value;
}

std::optional<std::string> YamlReader::scalar(const YAML::Node& node, std::string_view key,
                                              std::string_view expected) {
  if (!usable(node)) return std::nullopt;
  if (node.IsScalar()) return node.Scalar();
  error(node, fmt::format("'{}' must be {}, got {}", key, expected, describeNode(node)));
  return std::nullopt;
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, std::string_view key) {
  return scalar(node, key, "a string");
}

std::optional<int64_t> YamlReader::integer(const YAML::Node& node, std::string_view key, int64_t min,
                                           int64_t max) {
  std::optional<std::string> text = scalar(node, key, "an integer");
  if (!text) return std::nullopt;
  int64_t value = 0;
  std::string reason;
  if (!parseInteger(*text, value, reason)) {
    if (reason == "out of range") {
      error(node, fmt::format("'{}' must be between {} and {}, got {}", key, min, max, *text));
    } else {
      error(node, fmt::format("'{}' must be an integer, got '{}'", key, *text));
    }
    return std::nullopt;
  }
  if (value >= min && value <= max) return value;
  if (min == 1 && value < 1) {
    error(node, fmt::format("'{}' must be a positive integer, got {}", key, value));
  } else if (max == std::numeric_limits<int64_t>::max()) {
    error(node, fmt::format("'{}' must be at least {}, got {}", key, min, value));
  } else {
    error(node, fmt::format("'{}' must be between {} and {}, got {}", key, min, max, value));
  }
  return std::nullopt;
}

std::optional<Duration> YamlReader::positiveDuration(const YAML::Node& node, std::string_view key) {
  std::optional<std::string> text = scalar(node, key, "a duration such as 10s");
  if (!text) return std::nullopt;
  Duration value{};
  std::string reason;
  if (!parseDuration(*text, value, reason)) {
    error(node, fmt::format("invalid duration '{}' for '{}': {}", *text, key, reason));
    return std::nullopt;
  }
  if (value.count() <= 0) {
    error(node, fmt::format("'{}' must be greater than 0, got {}", key, *text));
    return std::nullopt;
  }
  return value;
}

std::optional<uint64_t> YamlReader::size(const YAML::Node& node, std::string_view key, uint64_t min) {
  std::optional<std::string> text = scalar(node, key, "a size such as 16KiB");
  if (!text) return std::nullopt;
  uint64_t value = 0;
  std::string reason;
  if (!parseSize(*text, value, reason)) {
    error(node, fmt::format("invalid size '{}' for '{}': {}", *text, key, reason));
    return std::nullopt;
  }
  if (value < min) {
    error(node, fmt::format("'{}' must be at least {} bytes, got {}", key, min, *text));
    return std::nullopt;
  }
  return value;
}

std::optional<SocketAddress> YamlReader::address(const YAML::Node& node, std::string_view key,
                                                 HostKind kind) {
  std::optional<std::string> text = scalar(node, key, "an address such as 127.0.0.1:8000");
  if (!text) return std::nullopt;
  SocketAddress value;
  std::string reason;
  if (!parseSocketAddress(*text, value, reason, kind)) {
    error(node, fmt::format("invalid address '{}' for '{}': {}", *text, key, reason));
    return std::nullopt;
  }
  return value;
}

std::optional<std::vector<std::string>> YamlReader::stringList(const YAML::Node& node, std::string_view key) {
  if (!usable(node) || !expectList(node, fmt::format("'{}'", key))) return std::nullopt;
  std::vector<std::string> values;
  bool ok = true;
  for (const YAML::Node& item : node) {
    std::optional<std::string> value = string(item, fmt::format("{} entry", key));
    if (value) {
      values.push_back(std::move(*value));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return values;
}

std::optional<std::vector<core::IpRange>> YamlReader::ipRanges(const YAML::Node& node, std::string_view key) {
  if (!usable(node) || !expectList(node, fmt::format("'{}'", key))) return std::nullopt;
  std::vector<core::IpRange> ranges;
  bool ok = true;
  for (const YAML::Node& item : node) {
    std::optional<std::string> text = string(item, fmt::format("{} entry", key));
    std::string problem;
    std::optional<core::IpRange> range = text ? core::IpRange::parse(*text, problem) : std::nullopt;
    if (range) {
      ranges.push_back(*range);
    } else {
      if (text) error(item, problem);  // the message quotes the entry
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return ranges;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, std::string_view key) {
  std::optional<std::string> text = scalar(node, key, "true or false");
  if (!text) return std::nullopt;
  if (*text == "true") return true;
  if (*text == "false") return false;
  error(node, fmt::format("'{}' must be true or false, got '{}'", key, *text));
  return std::nullopt;
}

std::optional<double> YamlReader::number(const YAML::Node& node, std::string_view key) {
  std::optional<std::string> text = scalar(node, key, "a number");
  if (!text) return std::nullopt;
  double value = 0;
  // from_chars, unlike strtod, ignores the locale and accepts no leading spaces or "0x".
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || ptr != text->data() + text->size() || !std::isfinite(value)) {
    error(node, fmt::format("'{}' must be a number, got '{}'", key, *text));
    return std::nullopt;
  }
  return value;
}

std::optional<size_t> YamlReader::choice(const YAML::Node& node, std::string_view key, std::string_view noun,
                                         const std::vector<std::string_view>& names) {
  std::optional<std::string> text = string(node, key);
  if (!text) return std::nullopt;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == *text) return i;
  }
  std::string_view suggestion = closestMatch(*text, names);
  std::string hint = suggestion.empty() ? fmt::format("expected one of: {}", fmt::join(names, ", "))
                                        : fmt::format("did you mean '{}'?", suggestion);
  error(node, fmt::format("unknown {} '{}' ({})", noun, *text, hint));
  return std::nullopt;
}

size_t editDistance(std::string_view a, std::string_view b) {
  // Full table: keys are short, and the transposition rule needs two rows back.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string_view closestMatch(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t bestDistance = 3;  // suggest only within two edits; farther guesses mislead
  for (std::string_view candidate : candidates) {
    size_t distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

namespace {

bool isNameStart(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isNameChar(char c) {
  return isNameStart(c) || (c >= '0' && c <= '9');
}

// Expands one scalar; false (with `reason`) on the first problem.
bool expandScalar(const std::string& in, std::string& out, std::string& reason) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 == in.size()) {
      out += in[i];
      continue;
    }
    if (in[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (in[i + 1] != '{') {
      out += '$';
      continue;
    }
    size_t close = in.find('}', i + 2);
    if (close == std::string::npos) {
      reason = fmt::format("unterminated '${{' in '{}' (write $$ for a literal $)", in);
      return false;
    }
    std::string_view body(in.data() + i + 2, close - i - 2);
    size_t sep = body.find(":-");
    std::string_view name = body.substr(0, sep);
    bool valid = !name.empty() && isNameStart(name[0]) && std::all_of(name.begin(), name.end(), isNameChar);
    if (!valid) {
      reason = fmt::format("invalid environment variable name '{}' in '{}'", name, in);
      return false;
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (sep != std::string_view::npos) {
      // Like the shell's ${VAR:-default}: an empty variable also takes the default.
      out += (value && *value) ? std::string_view(value) : body.substr(sep + 2);
    } else if (value) {
      out += value;
    } else {
      reason = fmt::format("environment variable '{}' is not set (use ${{{}:-default}} to give a default)",
                           name, name);
      return false;
    }
    i = close;
  }
  return true;
}

struct EnvironmentExpander {
  YamlReader& reader;
  // An alias shares its anchor's node, so a scalar can be reached twice; expanding it again
  // would turn "$${X}" (a literal "${X}" after the first pass) into X's value. The address
  // of a node's scalar string identifies the shared node.
  std::unordered_set<const std::string*> done;

  void walk(YAML::Node node, int depth) {
    // Anchors can make a node contain itself; nothing in flowguard.yaml nests this deep.
    if (depth > 64) {
      reader.error(node, "nesting too deep (a recursive anchor?)");
      return;
    }
    if (node.IsScalar()) {
      if (!done.insert(&node.Scalar()).second) return;
      if (node.Scalar().find('$') == std::string::npos) return;
      std::string expanded;
      std::string reason;
      if (!expandScalar(node.Scalar(), expanded, reason)) {
        reader.error(node, reason);
        reader.markUnusable(node);
        return;
      }
      node = expanded;  // set_scalar keeps the node's mark
      done.insert(&node.Scalar());
    } else if (node.IsSequence()) {
      for (YAML::Node item : node) walk(item, depth + 1);
    } else if (node.IsMap()) {
      // Keys are schema names, not values: they are left alone.
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (it->second.IsNull()) reader.noteEmptyValue(it->second, it->first.Mark());
        walk(it->second, depth + 1);
      }
    }
  }
};

}  // namespace

void expandEnvironment(YAML::Node root, YamlReader& reader) {
  EnvironmentExpander expander{reader, {}};
  expander.walk(root, 0);
}

}  // namespace flowguard::config
