#!/usr/bin/env python3
"""An HTTP client that is not FlowGuard, for tests/integration/test_oracle.cc.

FlowGuard's own test client parses answers with FlowGuard's codec, so a framing bug could
cancel itself out. This script talks to a running gateway with two parsers that share no code
with FlowGuard: Python's http.client, and a small strict parser below (exact CRLFs, one
Content-Length, hex-only chunk-size lines, nothing left over on the wire). It prints one JSON
object on stdout describing what it saw; the C++ test asserts on that. Any exception (a
malformed answer, a timeout, bytes left over) ends the run with {"error": "..."} so the test
fails with the parser's own words.

Usage: oracle_client.py AREA --port GATEWAY_PORT [--admin-port PORT] [--expect-requests N]
AREA is one of proxy, chunked, pipeline, local, admin. Standard library only.
"""

import argparse
import hashlib
import http.client
import json
import re
import socket
import sys
import time
import traceback

TIMEOUT = 15.0  # seconds per socket operation; a framing error shows up as a hang otherwise


def pattern(n, offset=0):
    """The body flowguard-backend's /bytes/N sends: 'a'..'z' repeated."""
    return bytes(ord("a") + (offset + i) % 26 for i in range(n))


# ---- http.client -------------------------------------------------------------------------


class _KeepOpen:
    """One buffered reader shared by consecutive HTTPResponse objects. http.client closes its
    file when a response ends and makes a new one for the next: bytes already buffered after
    the declared end of one response (a Content-Length too short, a stray CRLF) would be
    dropped instead of breaking the next response, as they would for any real client."""

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):  # readline, read, readinto, read1, peek...
        return getattr(self._f, name)

    def close(self):
        pass

    def really_close(self):
        self._f.close()


class _OneFile:
    """Stands in for a socket: HTTPResponse only calls makefile()."""

    def __init__(self, f):
        self.f = f

    def makefile(self, *args, **kwargs):
        return self.f


class Connection(http.client.HTTPConnection):
    """http.client's connection (its request encoding, its response parser) with all the
    responses of one connection read from one buffered reader (see _KeepOpen)."""

    reader = None

    def connect(self):
        super().connect()
        self.reader = _KeepOpen(self.sock.makefile("rb"))
        reader = self.reader
        self.response_class = lambda sock, *a, **kw: http.client.HTTPResponse(_OneFile(reader), *a, **kw)

    def finish(self):
        """After a response to `Connection: close`: the server closes, nothing else comes."""
        rest = self.reader.read()
        self.reader.really_close()
        self.close()
        if rest:
            raise StrictError("bytes after the last response: %r" % rest[:80])


def connection(port):
    return Connection("127.0.0.1", port, timeout=TIMEOUT)


def describe(resp, body):
    """What a test wants to know about one answer. Bodies travel as latin-1 text so every
    byte survives JSON; large bodies are described by length, digest and pattern check."""
    out = {
        "status": resp.status,
        "reason": resp.reason,
        "version": resp.version,
        "headers": [[k, v] for k, v in resp.getheaders()],
        "chunked": bool(resp.chunked),
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_is_pattern": len(body) > 0 and body == pattern(len(body)),
    }
    if len(body) <= 65536:
        out["body"] = body.decode("latin-1")
        try:
            out["json"] = json.loads(body)
        except ValueError:
            pass
    return out


def exchange(conn, method, path, body=None, headers=None, encode_chunked=False, close=False):
    """One request and its whole answer. close: the last on this connection (Connection:
    close), after which only EOF may follow (checked by conn.finish())."""
    headers = dict(headers or {})
    if close:
        headers["Connection"] = "close"
    conn.request(method, path, body=body, headers=headers, encode_chunked=encode_chunked)
    resp = conn.getresponse()
    data = resp.read()
    out = describe(resp, data)
    if close:
        conn.finish()
    return out


# ---- the strict parser ---------------------------------------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) ([\t !-~\x80-\xff]*)\r\n")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t !-~\x80-\xff]*?)[ \t]*\r\n")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})\r\n")


class StrictError(Exception):
    pass


def strict_parse(buf, pos, head_request=False):
    """Parses one response at buf[pos:]. Returns (dict, next_pos). Raises StrictError on any
    deviation from RFC 9112 framing as FlowGuard promises to write it."""
    m = _STATUS_LINE.match(buf, pos)
    if not m:
        raise StrictError("bad status line at byte %d: %r" % (pos, buf[pos:pos + 60]))
    status = int(m.group(1))
    pos = m.end()
    headers = []
    while not buf.startswith(b"\r\n", pos):
        f = _FIELD.match(buf, pos)
        if not f:
            raise StrictError("bad header line at byte %d: %r" % (pos, buf[pos:pos + 60]))
        headers.append([f.group(1).decode("latin-1"), f.group(2).decode("latin-1")])
        pos = f.end()
    pos += 2
    lower = [(k.lower(), v) for k, v in headers]
    lengths = [v for k, v in lower if k == "content-length"]
    codings = [v for k, v in lower if k == "transfer-encoding"]
    chunk_sizes = []
    if len(lengths) > 1:
        raise StrictError("more than one Content-Length: %r" % lengths)
    if lengths and codings:
        raise StrictError("Content-Length together with Transfer-Encoding")
    if head_request or status in (204, 304) or status < 200:
        if status in (204, 304) and lengths and lengths[0] != "0" and status == 204:
            raise StrictError("204 with Content-Length %s" % lengths[0])
        body = b""
    elif codings:
        if [c.lower() for c in codings] != ["chunked"]:
            raise StrictError("unexpected Transfer-Encoding %r" % codings)
        body = b""
        while True:
            c = _CHUNK_SIZE.match(buf, pos)
            if not c:
                raise StrictError("bad chunk-size line at byte %d: %r" % (pos, buf[pos:pos + 40]))
            size = int(c.group(1), 16)
            pos = c.end()
            if size == 0:
                break
            chunk_sizes.append(size)
            if len(buf) < pos + size + 2:
                raise StrictError("chunk of %d bytes cut short" % size)
            body += buf[pos:pos + size]
            pos += size
            if buf[pos:pos + 2] != b"\r\n":
                raise StrictError("chunk data not followed by CRLF at byte %d: %r" %
                                  (pos, buf[pos:pos + 20]))
            pos += 2
        # No trailers expected from these exchanges: the last chunk ends with one CRLF.
        if buf[pos:pos + 2] != b"\r\n":
            raise StrictError("last chunk not followed by CRLF: %r" % buf[pos:pos + 40])
        pos += 2
    elif lengths:
        if not re.fullmatch(r"[0-9]{1,19}", lengths[0]):
            raise StrictError("bad Content-Length %r" % lengths[0])
        n = int(lengths[0])
        if len(buf) < pos + n:
            raise StrictError("body shorter than Content-Length %d: %d bytes" % (n, len(buf) - pos))
        body = buf[pos:pos + n]
        pos += n
    else:
        body = buf[pos:]  # delimited by the close
        pos = len(buf)
    return {
        "status": status,
        "headers": headers,
        "chunk_sizes": chunk_sizes,
        "body_len": len(body),
        "body_is_pattern": len(body) > 0 and body == pattern(len(body)),
        "body": body.decode("latin-1") if len(body) <= 4096 else None,
    }, pos


def raw_until_close(port, data):
    """Sends `data` on a fresh connection and returns every byte received until the server
    closes (the requests must end with Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def strict_all(buf, heads=()):
    """Every response in `buf`, in order; nothing may be left over."""
    out = []
    pos = 0
    i = 0
    while pos < len(buf):
        r, pos = strict_parse(buf, pos, head_request=i in heads)
        out.append(r)
        i += 1
    return out


# ---- the areas ---------------------------------------------------------------------------


def area_proxy(args):
    c = connection(args.port)
    out = {}
    # A POST body with every byte value, echoed back by the backend through the gateway.
    binary = bytes(range(256)) * 4
    out["echo"] = exchange(c, "POST", "/echo", body=binary,
                           headers={"Content-Type": "application/x-oracle"})
    out["echo_matches"] = out["echo"]["body_sha256"] == hashlib.sha256(binary).hexdigest()
    # A larger body, more than one read on every hop.
    big = pattern(200000, 7)
    out["echo_big"] = exchange(c, "POST", "/echo", body=big,
                               headers={"Content-Type": "application/octet-stream"})
    out["echo_big_matches"] = out["echo_big"]["body_sha256"] == hashlib.sha256(big).hexdigest()
    # What the backend saw of a request head and body.
    out["info"] = exchange(c, "POST", "/some/where?x=1&y=two", body=b"hello",
                           headers={"X-Custom": "kept", "Content-Type": "text/plain"})
    # Response headers from the scripted upstream behind /raw (repeated fields stay apart in
    # getheaders()), then the connection must still be usable.
    out["raw"] = exchange(c, "GET", "/raw/x")
    out["after_raw"] = exchange(c, "GET", "/after", close=True)
    return out


def area_chunked(args):
    c = connection(args.port)
    out = {}
    pieces = [b"first-", b"x" * 5000, b"-", bytes(range(256)), b"-last"]
    total = b"".join(pieces)
    # http.client sends an iterable body with Transfer-Encoding: chunked.
    out["echo"] = exchange(c, "POST", "/echo", body=iter(pieces),
                           headers={"Content-Type": "application/x-chunks"}, encode_chunked=True)
    out["echo_matches"] = out["echo"]["body_sha256"] == hashlib.sha256(total).hexdigest()
    out["echo_total"] = len(total)
    # What reached the backend: a chunked request of the same length.
    out["info"] = exchange(c, "POST", "/upload", body=iter(pieces), encode_chunked=True)
    # A chunked response from the backend, re-framed by the gateway.
    out["bytes"] = exchange(c, "GET", "/bytes/100000?chunked=1", close=True)
    # The same, byte for byte, through the strict parser: chunk-size lines, CRLFs, the end.
    raw = raw_until_close(args.port, b"GET /bytes/70000?chunked=1 HTTP/1.1\r\nHost: oracle\r\n"
                                     b"Connection: close\r\n\r\n")
    out["strict_bytes"] = strict_all(raw)
    raw = raw_until_close(args.port, b"POST /echo HTTP/1.1\r\nHost: oracle\r\n"
                                     b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n"
                                     b"Connection: close\r\n\r\n"
                                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    out["strict_echo"] = strict_all(raw)
    return out


PIPELINE = (
    b"GET /delay/150 HTTP/1.1\r\nHost: oracle\r\n\r\n"
    b"POST /p2 HTTP/1.1\r\nHost: oracle\r\nContent-Length: 7\r\n\r\npayload"
    b"GET /direct HTTP/1.1\r\nHost: oracle\r\n\r\n"
    b"GET /bytes/3000?chunked=1 HTTP/1.1\r\nHost: oracle\r\n\r\n"
    b"HEAD /bytes/1000 HTTP/1.1\r\nHost: oracle\r\n\r\n"
    b"POST /echo HTTP/1.1\r\nHost: oracle\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4\r\nabcd\r\n0\r\n\r\n"
    b"DELETE /gone HTTP/1.1\r\nHost: oracle\r\n\r\n"
    b"GET /p8 HTTP/1.1\r\nHost: oracle\r\nConnection: close\r\n\r\n")
PIPELINE_METHODS = ["GET", "POST", "GET", "GET", "HEAD", "POST", "DELETE", "GET"]


def area_pipeline(args):
    out = {}
    # http.client, one response at a time from one buffered reader.
    with socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT) as s:
        s.sendall(PIPELINE)
        f = _KeepOpen(s.makefile("rb"))
        answers = []
        for method in PIPELINE_METHODS:
            resp = http.client.HTTPResponse(_OneFile(f), method=method)
            resp.begin()
            answers.append(describe(resp, resp.read()))
        out["answers"] = answers
        # The last request said Connection: close: after its answer, nothing but EOF.
        out["left_over"] = f.read().decode("latin-1")
        f.really_close()
    # The same bytes again through the strict parser, everything up to the close.
    out["strict"] = strict_all(raw_until_close(args.port, PIPELINE), heads={4})
    return out


KEY = {"X-API-Key": "oracle-key-0001"}


def area_local(args):
    out = {}
    c = connection(args.port)
    seq = [("/api/a", KEY), ("/nowhere", KEY), ("/api/b", {}),
           ("/api/c", {"X-API-Key": "not-a-key"})]
    out["first"] = [exchange(c, "GET", path, headers=h, close=i == len(seq) - 1)
                    for i, (path, h) in enumerate(seq)]
    # Raw, to the close: Content-Length must be exactly the bytes that follow the head.
    out["raw_404"] = strict_all(raw_until_close(
        args.port, b"GET /nowhere HTTP/1.1\r\nHost: oracle\r\nX-API-Key: oracle-key-0001\r\n"
                   b"Connection: close\r\n\r\n"))
    out["raw_401"] = strict_all(raw_until_close(
        args.port, b"GET /api/x HTTP/1.1\r\nHost: oracle\r\nConnection: close\r\n\r\n"))
    c = connection(args.port)
    out["second"] = [exchange(c, "GET", "/api/d", headers=KEY),
                     exchange(c, "GET", "/api/e", headers=KEY, close=True)]
    out["raw_429"] = strict_all(raw_until_close(
        args.port, b"GET /api/f HTTP/1.1\r\nHost: oracle\r\nX-API-Key: oracle-key-0001\r\n"
                   b"Connection: close\r\n\r\n"))
    return out


def area_admin(args):
    out = {}
    c = connection(args.port)
    traffic = [exchange(c, "GET", "/api/x%d" % i) for i in range(4)]
    traffic += [exchange(c, "GET", "/nowhere"), exchange(c, "GET", "/nowhere", close=True)]
    out["traffic"] = [t["status"] for t in traffic]
    # A request counts once the worker finished it, a moment after the answer: wait for the
    # count (an observable event), then take the snapshot the test checks.
    admin = connection(args.admin_port)
    deadline = time.monotonic() + 30
    while True:
        stats = exchange(admin, "GET", "/stats")
        doc = stats.get("json")
        if doc and doc.get("totals", {}).get("requests") == args.expect_requests:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("/stats never counted %d requests: %r" % (args.expect_requests, doc))
        time.sleep(0.02)
    out["stats"] = stats
    out["clusters"] = exchange(admin, "GET", "/clusters", close=True)
    return out


AREAS = {"proxy": area_proxy, "chunked": area_chunked, "pipeline": area_pipeline,
         "local": area_local, "admin": area_admin}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("area", choices=sorted(AREAS))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--admin-port", type=int)
    p.add_argument("--expect-requests", type=int, default=0)
    args = p.parse_args()
    try:
        result = {"area": args.area, "result": AREAS[args.area](args)}
    except Exception as e:  # every failure becomes data for the C++ test to show
        result = {"area": args.area, "error": repr(e),
                  "traceback": traceback.format_exc()}
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
