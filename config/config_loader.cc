#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "config/filter_parsers.h"
#include "config/units.h"
#include "config/yaml_reader.h"

namespace flowguard::config {
namespace {

constexpr int64_t kMaxWorkers = 1024;
constexpr int64_t kMaxRetries = 10;
constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

void setDuration(YamlReader& r, const YAML::Node& map, std::string_view key, Duration& out) {
  if (auto node = YamlReader::find(map, key)) {
    if (auto value = r.positiveDuration(*node, key)) out = *value;
  }
}

template <class T>
void setInteger(YamlReader& r, const YAML::Node& map, std::string_view key, int64_t min, int64_t max,
                T& out) {
  if (auto node = YamlReader::find(map, key)) {
    if (auto value = r.integer(*node, key, min, max)) out = static_cast<T>(*value);
  }
}

template <class T>
void setSize(YamlReader& r, const YAML::Node& map, std::string_view key, uint64_t min, T& out) {
  if (auto node = YamlReader::find(map, key)) {
    if (auto value = r.size(*node, key, min)) {
      if (*value > std::numeric_limits<T>::max()) {
        r.error(*node, fmt::format("'{}' is too large", key));
      } else {
        out = static_cast<T>(*value);
      }
    }
  }
}

// A required, non-empty name; the node is kept for duplicate-name messages.
std::optional<YAML::Node> readName(YamlReader& r, const YAML::Node& map, std::string_view context,
                                   std::string& out) {
  std::optional<YAML::Node> node = r.require(map, "name", context);
  if (!node) return std::nullopt;
  std::optional<std::string> name = r.string(*node, "name");
  if (!name) return std::nullopt;
  if (name->empty()) {
    r.error(*node, "'name' must not be empty");
    return std::nullopt;
  }
  out = std::move(*name);
  return node;
}

// Reports the second and later uses of a name, pointing back at the first.
class DuplicateNames {
 public:
  explicit DuplicateNames(std::string_view what) : what_(what) {}
  void add(YamlReader& r, const std::string& name, const YAML::Node& at) {
    auto [it, inserted] = first_.emplace(name, YamlReader::location(at).line);
    if (!inserted) {
      r.error(at, fmt::format("duplicate {} name '{}' (first defined at line {})", what_, name, it->second));
    }
  }

 private:
  std::string_view what_;
  std::map<std::string, int> first_;
};

void parseWorkers(YamlReader& r, const YAML::Node& node, Config& config) {
  if (!r.usable(node)) return;
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text == "auto") {
      config.workers = 0;
      return;
    }
    int64_t value = 0;
    std::string reason;
    if (parseInteger(text, value, reason) && value >= 1 && value <= kMaxWorkers) {
      config.workers = static_cast<unsigned>(value);
      return;
    }
  }
  r.error(node, fmt::format("'workers' must be 'auto' or an integer between 1 and {}, got {}",
                            kMaxWorkers, describeNode(node)));
}

ClusterConfig parseCluster(YamlReader& r, const YAML::Node& node, DuplicateNames& names) {
  ClusterConfig cluster;
  cluster.location = YamlReader::location(node);
  if (!r.expectMap(node, "cluster")) return cluster;
  r.checkKeys(node, "in cluster",
              {"name", "hosts", "lb_policy", "connect_timeout", "timeout", "retries",
               "max_connections_per_host", "max_pending_requests", "max_idle_per_host",
               "idle_timeout"});
  if (auto nameNode = readName(r, node, "in cluster", cluster.name)) names.add(r, cluster.name, *nameNode);
  if (auto hosts = r.require(node, "hosts", "in cluster")) {
    if (r.expectList(*hosts, "'hosts'")) {
      if (hosts->size() == 0) r.error(*hosts, "cluster needs at least one host");
      for (const YAML::Node& host : *hosts) {
        std::optional<SocketAddress> address = r.address(host, "hosts");
        if (!address) continue;
        for (const SocketAddress& known : cluster.hosts) {
          if (known.host == address->host && known.port == address->port) {
            r.error(host, fmt::format("duplicate host '{}' in cluster", address->str()));
          }
        }
        cluster.hosts.push_back(std::move(*address));
      }
    }
  }
  if (auto policy = YamlReader::find(node, "lb_policy")) {
    if (auto text = r.string(*policy, "lb_policy")) {
      if (*text == "round_robin") {
        cluster.lbPolicy = LbPolicy::RoundRobin;
      } else {
        r.error(*policy, fmt::format("unknown lb_policy '{}' (expected one of: round_robin)", *text));
      }
    }
  }
  setDuration(r, node, "connect_timeout", cluster.connectTimeout);
  setDuration(r, node, "timeout", cluster.timeout);
  setDuration(r, node, "idle_timeout", cluster.idleTimeout);
  setInteger(r, node, "retries", 0, kMaxRetries, cluster.retries);
  setInteger(r, node, "max_connections_per_host", 1, kMaxU32, cluster.maxConnectionsPerHost);
  // Zero is meaningful for these two: no queueing beyond the connection limit, no idle pool.
  setInteger(r, node, "max_pending_requests", 0, kMaxU32, cluster.maxPendingRequests);
  setInteger(r, node, "max_idle_per_host", 0, kMaxU32, cluster.maxIdlePerHost);
  return cluster;
}

std::string terminalName(const YAML::Node& filter) {
  std::optional<YAML::Node> name = YamlReader::find(filter, "name");
  return name && name->IsScalar() ? name->Scalar() : std::string();
}

void parseFilters(YamlReader& r, const YAML::Node& list, FilterParseContext& ctx,
                  std::vector<FilterConfig>& out) {
  if (!r.expectList(list, "'filters'")) return;
  // Terminal filters with their index. (Never assign one YAML::Node to another: yaml-cpp
  // makes that rebind the target node itself, not the handle.)
  std::vector<std::pair<size_t, YAML::Node>> terminals;
  size_t index = 0;
  for (const YAML::Node& node : list) {
    ++index;
    if (!r.expectMap(node, "filter")) continue;
    std::string name;
    std::optional<YAML::Node> nameNode = readName(r, node, "in filter", name);
    if (!nameNode) continue;
    const FilterParser* parser = findFilterParser(name);
    if (!parser) {
      std::vector<std::string_view> known;
      for (const FilterParser& p : filterParsers()) known.push_back(p.name);
      std::string_view suggestion = closestMatch(name, known);
      std::string hint = suggestion.empty()
                             ? fmt::format("known filters: {}", fmt::join(known, ", "))
                             : fmt::format("did you mean '{}'?", suggestion);
      r.error(*nameNode, fmt::format("unknown filter '{}' ({})", name, hint));
      continue;
    }
    if (parser->terminal) terminals.emplace_back(index, node);
    out.push_back(FilterConfig{name, parser->parse(node, ctx), YamlReader::location(node)});
  }
  if (terminals.empty()) {
    std::vector<std::string_view> names;
    for (const FilterParser& p : filterParsers()) {
      if (p.terminal) names.push_back(p.name);
    }
    r.error(list, fmt::format("filter list must end with the '{}' filter (the terminal filter)",
                              fmt::join(names, "' or '")));
    return;
  }
  for (size_t i = 1; i < terminals.size(); ++i) {
    r.error(terminals[i].second,
            fmt::format("a second terminal filter '{}': a listener has exactly one, at the end",
                        terminalName(terminals[i].second)));
  }
  if (terminals.front().first != list.size()) {
    r.error(terminals.front().second,
            fmt::format("'{}' must be the last filter (it is terminal: filters after it never run)",
                        terminalName(terminals.front().second)));
  }
}

ListenerConfig parseListener(YamlReader& r, const YAML::Node& node, FilterParseContext& ctx,
                             DuplicateNames& names, std::optional<YAML::Node>& addressNode) {
  ListenerConfig listener;
  listener.location = YamlReader::location(node);
  if (!r.expectMap(node, "listener")) return listener;
  r.checkKeys(node, "in listener",
              {"name", "address", "filters", "max_request_body", "max_header_bytes", "max_headers",
               "header_timeout", "idle_timeout"});
  if (auto nameNode = readName(r, node, "in listener", listener.name)) {
    names.add(r, listener.name, *nameNode);
  }
  if (auto address = r.require(node, "address", "in listener")) {
    if (auto value = r.address(*address, "address")) {
      listener.address = std::move(*value);
      addressNode.emplace(*address);
    }
  }
  if (auto filters = r.require(node, "filters", "in listener")) {
    parseFilters(r, *filters, ctx, listener.filters);
  }
  setSize(r, node, "max_request_body", 0, listener.maxRequestBody);
  setSize(r, node, "max_header_bytes", 1, listener.maxHeaderBytes);
  setInteger(r, node, "max_headers", 1, kMaxU32, listener.maxHeaders);
  setDuration(r, node, "header_timeout", listener.headerTimeout);
  setDuration(r, node, "idle_timeout", listener.idleTimeout);
  return listener;
}

bool isWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// Two listeners on one port collide when the hosts are equal or one is a wildcard: with
// SO_REUSEPORT the kernel would quietly split connections between them instead of failing.
void checkListenerAddresses(YamlReader& r, const std::vector<ListenerConfig>& listeners,
                            const std::vector<std::optional<YAML::Node>>& addressNodes) {
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (!addressNodes[i]) continue;
    const SocketAddress& a = listeners[i].address;
    for (size_t j = 0; j < i; ++j) {
      if (!addressNodes[j]) continue;
      const SocketAddress& b = listeners[j].address;
      if (a.port != b.port) continue;
      int line = YamlReader::location(*addressNodes[j]).line;
      if (a.host == b.host) {
        r.error(*addressNodes[i], fmt::format("duplicate listener address '{}' (already used by listener '{}' at line {})",
                                              a.str(), listeners[j].name, line));
        break;
      }
      if (isWildcard(a.host) || isWildcard(b.host)) {
        r.error(*addressNodes[i], fmt::format("listener address '{}' overlaps '{}' of listener '{}' at line {}",
                                              a.str(), b.str(), listeners[j].name, line));
        break;
      }
    }
  }
}

void parseConfig(YamlReader& r, const YAML::Node& root, Config& config) {
  if (root.IsNull()) {
    r.error(SourceLocation{1, 1}, "config is empty; expected a map with at least 'listeners'");
    return;
  }
  if (!r.expectMap(root, "the top level")) return;
  r.checkKeys(root, "at top level", {"workers", "listeners", "clusters"});
  if (auto workers = YamlReader::find(root, "workers")) parseWorkers(r, *workers, config);

  // Clusters first, so routes anywhere in the file can be checked against their names.
  std::set<std::string> clusterNames;
  if (auto clusters = YamlReader::find(root, "clusters")) {
    if (r.expectList(*clusters, "'clusters'")) {
      DuplicateNames names("cluster");
      for (const YAML::Node& node : *clusters) {
        config.clusters.push_back(parseCluster(r, node, names));
        if (!config.clusters.back().name.empty()) clusterNames.insert(config.clusters.back().name);
      }
    }
  }

  std::optional<YAML::Node> listeners = r.require(root, "listeners", "at top level");
  if (!listeners || !r.expectList(*listeners, "'listeners'")) return;
  if (listeners->size() == 0) {
    r.error(*listeners, "no listeners: at least one listener is required");
    return;
  }
  FilterParseContext ctx{r, clusterNames};
  DuplicateNames names("listener");
  std::vector<std::optional<YAML::Node>> addressNodes;
  for (const YAML::Node& node : *listeners) {
    addressNodes.emplace_back();
    config.listeners.push_back(parseListener(r, node, ctx, names, addressNodes.back()));
  }
  checkListenerAddresses(r, config.listeners, addressNodes);
}

}  // namespace

LoadResult loadConfigText(const std::string& text, const std::string& sourceName) {
  YamlReader reader(sourceName);
  auto config = std::make_shared<Config>();
  config->sourcePath = sourceName;
  try {
    YAML::Node root = YAML::Load(text);
    expandEnvironment(root, reader);
    parseConfig(reader, root, *config);
  } catch (const YAML::ParserException& e) {
    reader.error(e.mark, fmt::format("YAML syntax error: {}", e.msg));
  } catch (const YAML::Exception& e) {
    // The reader never subscripts a node of the wrong kind; this is a safety net, not a path.
    reader.error(e.mark, fmt::format("cannot read config: {}", e.msg));
  }

  LoadResult result;
  if (!reader.errors().empty()) {
    result.errors = std::move(reader.errors());
    // Cross-checks (duplicates) run after the main pass; file order reads best.
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return result;
  }
  result.config = std::move(config);
  return result;
}

LoadResult loadConfigFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::string text;
  int error = 0;
  if (!file) {
    error = errno;
  } else {
    errno = 0;
    char buffer[8192];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
    // fopen succeeds on a directory; the read then fails with EISDIR.
    if (std::ferror(file)) error = errno != 0 ? errno : EIO;
    std::fclose(file);
  }
  if (error != 0) {
    LoadResult result;
    result.errors.push_back(ConfigError{path, 0, 0, fmt::format("cannot read config file: {}", std::strerror(error))});
    return result;
  }
  return loadConfigText(text, path);
}

}  // namespace flowguard::config
