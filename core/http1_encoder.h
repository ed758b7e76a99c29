// Serialises message heads and chunked framing. Appends to a caller-owned string so a
// connection can reuse one output buffer and hand it to uv_write with the body buffers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/http_message.h"

namespace flowguard::core {

// "METHOD target HTTP/1.1\r\n" + fields + "\r\n". Always HTTP/1.1 on the wire.
void encodeRequestHead(const RequestHead& head, std::string& out);

// "HTTP/1.1 status reason\r\n" + fields + "\r\n" (reason from reasonPhrase() when empty).
void encodeResponseHead(const ResponseHead& head, std::string& out);

// Chunk-size line for a chunk of n bytes (n > 0): "<hex>\r\n". The caller writes the data
// and then kChunkEnd.
void encodeChunkHeader(size_t n, std::string& out);
inline constexpr std::string_view kChunkEnd = "\r\n";

// The last chunk, optional trailer fields, and the final CRLF: "0\r\n" fields "\r\n".
void encodeLastChunk(const HeaderMap* trailers, std::string& out);

}  // namespace flowguard::core
