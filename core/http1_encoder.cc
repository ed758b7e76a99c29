#include "core/http1_encoder.h"

#include <charconv>
#include <cstring>

namespace flowguard::core {

namespace {

// One resize for the whole block, then plain copies: four std::string appends per field
// (each checking capacity) cost more than the bytes they copied.
void appendFields(const HeaderMap& headers, std::string& out) {
  size_t total = 0;
  for (const Header& h : headers) total += h.name.size() + h.value.size() + 4;
  size_t at = out.size();
  out.resize(at + total);
  char* p = out.data() + at;
  for (const Header& h : headers) {
    std::memcpy(p, h.name.data(), h.name.size());
    p += h.name.size();
    *p++ = ':';
    *p++ = ' ';
    std::memcpy(p, h.value.data(), h.value.size());
    p += h.value.size();
    *p++ = '\r';
    *p++ = '\n';
  }
}

}  // namespace

void encodeRequestHead(const RequestHead& head, std::string& out) {
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(" HTTP/1.1\r\n");
  appendFields(head.headers, out);
  out.append("\r\n");
}

void encodeResponseHead(const ResponseHead& head, std::string& out) {
  char num[16];
  auto res = std::to_chars(num, num + sizeof num, head.status);
  out.append("HTTP/1.1 ");
  out.append(num, res.ptr);
  out.push_back(' ');
  if (head.reason.empty()) {
    out.append(reasonPhrase(head.status));
  } else {
    out.append(head.reason);
  }
  out.append("\r\n");
  appendFields(head.headers, out);
  out.append("\r\n");
}

void encodeChunkHeader(size_t n, std::string& out) {
  char hex[2 * sizeof(size_t) + 2];
  auto res = std::to_chars(hex, hex + sizeof hex, n, 16);  // lowercase digits
  out.append(hex, res.ptr);
  out.append("\r\n");
}

void encodeLastChunk(const HeaderMap* trailers, std::string& out) {
  out.append("0\r\n");
  if (trailers != nullptr) appendFields(*trailers, out);
  out.append("\r\n");
}

}  // namespace flowguard::core
