// Typed, error-collecting reads over a yaml-cpp tree. Each read that
// fails records "what was expected" at the offending node and returns nullopt, so the
// loader keeps going and an operator sees every mistake of a file in one run.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/config.h"
#include "config/config_loader.h"
#include "config/units.h"

namespace flowguard::config {

class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  std::vector<ConfigError>& errors() { return errors_; }

  void error(const YAML::Node& at, std::string message);
  void error(const YAML::Mark& at, std::string message);
  void error(SourceLocation at, std::string message);
  // Something that works but is probably not what the operator meant; the file still loads.
  void warning(SourceLocation at, std::string message);
  std::vector<ConfigError>& warnings() { return warnings_; }

  // 1-based position of a node ({0, 0} when yaml-cpp has none).
  static SourceLocation location(const YAML::Node& node);
  static SourceLocation location(const YAML::Mark& mark);

  // Shape checks; `what` names the node in the message ("listener", "'hosts'").
  bool expectMap(const YAML::Node& node, std::string_view what);
  bool expectList(const YAML::Node& node, std::string_view what);

  // Reports keys of `map` that are not in `known` (suggesting the closest known key),
  // keys that are not strings, and keys given twice. `context` ends the message:
  // "unknown key 'x' in listener".
  void checkKeys(const YAML::Node& map, std::string_view context,
                 std::initializer_list<std::string_view> known);

  // The value of `key` in `map`; nullopt when absent. `map` must be a map.
  static std::optional<YAML::Node> find(const YAML::Node& map, std::string_view key);
  // Same, and reports "missing required key" at the map when absent.
  std::optional<YAML::Node> require(const YAML::Node& map, std::string_view key, std::string_view context);

  // Typed values; `key` is the name used in messages.
  std::optional<std::string> string(const YAML::Node& node, std::string_view key);
  std::optional<int64_t> integer(const YAML::Node& node, std::string_view key, int64_t min, int64_t max);
  // Timeouts must be greater than zero: a zero timeout would fire at once, never "no limit".
  std::optional<Duration> positiveDuration(const YAML::Node& node, std::string_view key);
  std::optional<uint64_t> size(const YAML::Node& node, std::string_view key, uint64_t min);
  std::optional<SocketAddress> address(const YAML::Node& node, std::string_view key,
                                       HostKind kind = HostKind::Literal);
  // A list of strings (each reported on its own if it is not a string).
  std::optional<std::vector<std::string>> stringList(const YAML::Node& node, std::string_view key);
  // A list of CIDR ranges or single addresses, IPv4 or IPv6 ("10.0.0.0/8", "::1").
  std::optional<std::vector<core::IpRange>> ipRanges(const YAML::Node& node, std::string_view key);
  // `true` or `false` only: YAML 1.1's yes/no/on/off are ambiguous next to string values.
  std::optional<bool> boolean(const YAML::Node& node, std::string_view key);
  // A finite decimal number such as 0.25.
  std::optional<double> number(const YAML::Node& node, std::string_view key);
  // One name out of a fixed set, e.g. `lb_policy: round_robin`: its index in `names`, or
  // nullopt after reporting "unknown <noun> 'x'" (suggesting the closest name when one is near).
  std::optional<size_t> choice(const YAML::Node& node, std::string_view key, std::string_view noun,
                               const std::vector<std::string_view>& names);

  // A scalar whose ${VAR} expansion failed was already reported; typing its raw text would
  // only add a second, misleading error at the same place. Such nodes read as absent.
  void markUnusable(const YAML::Node& node);
  bool usable(const YAML::Node& node) const;
  // yaml-cpp places an empty value (`address:` then a newline) at the next token, often on
  // the next line; errors about it point at its key instead.
  void noteEmptyValue(const YAML::Node& value, const YAML::Mark& keyMark);

 private:
  // The scalar text of `node`, or a "must be <expected>" error.
  std::optional<std::string> scalar(const YAML::Node& node, std::string_view key, std::string_view expected);

  // Nodes are identified by the address of their scalar string, which yaml-cpp keeps in the
  // node's shared data for every node type (Node itself exposes no identity).
  static const void* identity(const YAML::Node& node) { return &node.Scalar(); }

  std::string file_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
  std::unordered_set<const void*> unusable_;
  std::unordered_map<const void*, YAML::Mark> emptyValueKeys_;
};

// "a map", "a list", "null" or the quoted scalar: what a wrong-type message says was found.
std::string describeNode(const YAML::Node& node);

// Optimal-string-alignment distance (a swap of two neighbours counts as one edit).
size_t editDistance(std::string_view a, std::string_view b);

// The entry of `candidates` closest to `word` when at most two edits away, else empty.
std::string_view closestMatch(std::string_view word, const std::vector<std::string_view>& candidates);

// Replaces ${VAR}, ${VAR:-default} and $$ in every scalar value of the tree, in place, so
// each node keeps its mark. Problems (unset VAR, unterminated ${) go to `reader`, and the
// node is marked unusable. The same walk tells `reader` where empty values' keys are.
void expandEnvironment(YAML::Node root, YamlReader& reader);

}  // namespace flowguard::config
