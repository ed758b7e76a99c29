#include "gateway/admin_token.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace flowguard::gateway {

namespace {

std::string randomHex(size_t bytes) {
  unsigned char buffer[32];
  if (bytes > sizeof buffer || RAND_bytes(buffer, static_cast<int>(bytes)) != 1)
    throw std::runtime_error("the CSPRNG failed");
  std::string out;
  for (size_t i = 0; i < bytes; ++i) out += fmt::format("{:02x}", buffer[i]);
  return out;
}

// The token in an existing file, or "" when there is none yet.
std::string readToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return {};
    throw std::runtime_error(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  if (token.empty() || token.find_first_of(" \t\r\n") != std::string::npos) {
    throw std::runtime_error(fmt::format(
        "{} holds no usable token (one line, no spaces): delete it to have a new one made", path));
  }
  return token;
}

}  // namespace

AdminToken loadOrCreateAdminToken(const std::string& stateDir) {
  AdminToken result;
  result.path = (std::filesystem::path(stateDir) / kAdminTokenFile).string();
  if (std::string token = readToken(result.path); !token.empty()) {
    result.token = std::move(token);
    return result;
  }
  std::error_code ec;
  std::filesystem::create_directories(stateDir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create state_dir {}: {}", stateDir, ec.message()));

  // Written whole under a private name, then linked into place: link() fails if another
  // gateway got there first, and then its token is the one.
  const std::string token = randomHex(16);
  const std::string temporary = fmt::format("{}.{}.tmp", result.path, ::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write {}: {}", temporary, std::strerror(errno)));
  const std::string line = token + "\n";
  const bool written =
      ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const int writeErrno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temporary.c_str());
    throw std::runtime_error(fmt::format("cannot write {}: {}", temporary, std::strerror(writeErrno)));
  }
  const bool linked = ::link(temporary.c_str(), result.path.c_str()) == 0;
  const int linkErrno = errno;
  ::unlink(temporary.c_str());
  if (!linked && linkErrno != EEXIST)
    throw std::runtime_error(fmt::format("cannot create {}: {}", result.path, std::strerror(linkErrno)));
  if (!linked) {
    result.token = readToken(result.path);
    return result;
  }
  result.token = token;
  result.created = true;
  return result;
}

}  // namespace flowguard::gateway
