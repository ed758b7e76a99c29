#include "core/http1_encoder.h"

#include <charconv>

namespace flowguard::core {

namespace {

void appendFields(const HeaderMap& headers, std::string& out) {
  for (const Header& h : headers) {
    out.append(h.name);
    out.append(": ");
    out.append(h.value);
    out.append("\r\n");
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
