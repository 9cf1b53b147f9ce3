// Unit tests for http/request_parser.h: the request head parser (every smuggling and
// abuse case the header names, each limit with its status), FindHeadEnd, and the
// chunked decoder fed whole, split at every point and one byte at a time. Inputs are
// copied into exact-size heap blocks so the sanitizer build sees any read past the end.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "http/request_parser.h"

using myelin::http::ChunkedDecoder;
using myelin::http::FindHeadEnd;
using myelin::http::FindHeader;
using myelin::http::kMaxHeaders;
using myelin::http::Limits;
using myelin::http::Method;
using myelin::http::ParseError;
using myelin::http::ParseRequestHead;
using myelin::http::ParseStatus;
using myelin::http::RequestHead;

namespace {

// Owns an exact-size copy of the input (the views in head point into it).
struct Parsed {
  std::unique_ptr<uint8_t[]> bytes;
  size_t len = 0;
  ParseStatus status = ParseStatus::kError;
  std::unique_ptr<RequestHead> head = std::make_unique<RequestHead>();
  ParseError error{0, nullptr};

  bool ok() const { return status == ParseStatus::kDone; }
  uint16_t http_status() const { return status == ParseStatus::kError ? error.http_status : 0; }
  bool Inside(std::string_view v) const {
    if (v.empty()) return true;
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return p >= bytes.get() && p + v.size() <= bytes.get() + len;
  }
};

Parsed Parse(std::string_view text, const Limits& limits = Limits{}) {
  Parsed r;
  r.len = text.size();
  r.bytes.reset(new uint8_t[text.size() ? text.size() : 1]);
  if (!text.empty()) std::memcpy(r.bytes.get(), text.data(), text.size());
  r.status = ParseRequestHead(r.bytes.get(), r.len, limits, r.head.get(), &r.error);
  return r;
}

// The status of a request that must be refused (0 when it was not).
uint16_t Refused(std::string_view text, const Limits& limits = Limits{}) {
  return Parse(text, limits).http_status();
}

constexpr std::string_view kBrowserGet =
    "GET /api/v1/items?limit=20&cursor=abc HTTP/1.1\r\n"
    "Host: gateway.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; _ga=GA1.2.123456789.1700000000\r\n"
    "Referer: https://gateway.example.com/dashboard\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: cors\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

constexpr std::string_view kPostJson =
    "POST /v1/chat/completions HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 27\r\n"
    "\r\n"
    "{\"model\":\"m\",\"messages\":[]}";

constexpr std::string_view kUpgrade =
    "GET /ws?room=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

constexpr std::string_view kChunkedPost =
    "POST /upload HTTP/1.1\r\n"
    "Host: h\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Expect: 100-continue\r\n"
    "\r\n";

}  // namespace

// --- the head -------------------------------------------------------------------------

TEST(SimpleGet) {
  const Parsed p = Parse("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n");
  CHECK(p.ok());
  const RequestHead& h = *p.head;
  CHECK(h.method == Method::kGet);
  CHECK_EQ(h.method_text, std::string_view("GET"));
  CHECK_EQ(h.target, std::string_view("/index.html"));
  CHECK_EQ(h.path, std::string_view("/index.html"));
  CHECK_EQ(h.query, std::string_view(""));
  CHECK_EQ(h.version_minor, 1);
  CHECK_EQ(h.header_count, 1u);
  CHECK_EQ(h.head_bytes, p.len);
  CHECK(h.keep_alive);
  CHECK(!h.chunked);
  CHECK(!h.has_content_length);
  CHECK_EQ(h.content_length, 0u);
  CHECK(!h.upgrade_websocket);
  CHECK(!h.expect_continue);
  CHECK_EQ(h.host, std::string_view("example.com"));
  CHECK_EQ(h.authorization, std::string_view(""));
  CHECK(p.Inside(h.method_text) && p.Inside(h.target) && p.Inside(h.host));
}

TEST(BrowserGetFields) {
  const Parsed p = Parse(kBrowserGet);
  CHECK(p.ok());
  const RequestHead& h = *p.head;
  CHECK_EQ(h.path, std::string_view("/api/v1/items"));
  CHECK_EQ(h.query, std::string_view("limit=20&cursor=abc"));
  CHECK_EQ(h.header_count, 12u);
  CHECK_EQ(h.head_bytes, kBrowserGet.size());
  CHECK_EQ(h.authorization,
           std::string_view("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"));
  CHECK_EQ(h.headers[4].name, std::string_view("Accept-Encoding"));
  CHECK_EQ(h.headers[4].value, std::string_view("gzip, deflate, br"));
  CHECK(h.keep_alive);
  for (uint32_t i = 0; i < h.header_count; ++i) {
    CHECK(p.Inside(h.headers[i].name));
    CHECK(p.Inside(h.headers[i].value));
  }
}

TEST(PostWithBody) {
  const Parsed p = Parse(kPostJson);
  CHECK(p.ok());
  const RequestHead& h = *p.head;
  CHECK(h.method == Method::kPost);
  CHECK(h.has_content_length);
  CHECK_EQ(h.content_length, 27u);
  CHECK_EQ(h.head_bytes + h.content_length, p.len);
  CHECK_EQ(std::string_view(reinterpret_cast<const char*>(p.bytes.get()) + h.head_bytes, 27),
           std::string_view("{\"model\":\"m\",\"messages\":[]}"));
}

TEST(MethodsAndQuery) {
  struct M {
    const char* text;
    Method m;
  };
  const M methods[] = {{"GET", Method::kGet},         {"HEAD", Method::kHead},
                       {"POST", Method::kPost},       {"PUT", Method::kPut},
                       {"DELETE", Method::kDelete},   {"PATCH", Method::kPatch},
                       {"OPTIONS", Method::kOptions}, {"PROPFIND", Method::kOther},
                       {"get", Method::kOther},       {"M-SEARCH", Method::kOther}};
  for (const M& m : methods) {
    const Parsed p = Parse(std::string(m.text) + " /a?b=c?d HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(p.ok());
    CHECK(p.head->method == m.m);
    CHECK_EQ(p.head->method_text, std::string_view(m.text));
    CHECK_EQ(p.head->path, std::string_view("/a"));
    CHECK_EQ(p.head->query, std::string_view("b=c?d"));
  }
  const Parsed empty_query = Parse("GET /a? HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(empty_query.ok());
  CHECK_EQ(empty_query.head->path, std::string_view("/a"));
  CHECK_EQ(empty_query.head->query, std::string_view(""));
  // Characters browsers leave unescaped in a query are accepted.
  CHECK(Parse("GET /q?x={\"a\":[1|2]}^`~ HTTP/1.1\r\nHost: x\r\n\r\n").ok());
}

TEST(AsteriskAndAbsoluteForm) {
  const Parsed star = Parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(star.ok());
  CHECK_EQ(star.head->target, std::string_view("*"));
  CHECK_EQ(star.head->path, std::string_view("*"));
  CHECK_EQ(Refused("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  CHECK_EQ(Refused("OPTIONS *x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);

  const Parsed abs = Parse("GET http://Example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  CHECK(abs.ok());
  CHECK_EQ(abs.head->target, std::string_view("/p?q=1"));
  CHECK_EQ(abs.head->path, std::string_view("/p"));
  CHECK_EQ(abs.head->query, std::string_view("q=1"));
  CHECK_EQ(abs.head->host, std::string_view("example.com:8080"));
  CHECK(Parse("GET HTTPS://h/ HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  // Not simple, or not agreeing with Host: refused.
  CHECK_EQ(Refused("GET http://other.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET http://user:pw@h/p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET ftp://h/p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET http://h/p HTTP/1.0\r\n\r\n"), 400);
  CHECK_EQ(Refused("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET p HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(PipelinedRequests) {
  const std::string buf = std::string(kPostJson) + std::string(kUpgrade) +
                          "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const Parsed all = Parse(buf);
  size_t off = 0;
  std::vector<std::string> paths;
  std::vector<bool> keep_alive;
  while (off < buf.size()) {
    RequestHead h;
    ParseError e{};
    const ParseStatus st = ParseRequestHead(all.bytes.get() + off, buf.size() - off, Limits{}, &h, &e);
    CHECK(st == ParseStatus::kDone);
    if (st != ParseStatus::kDone) break;
    CHECK(h.head_bytes <= buf.size() - off);
    paths.emplace_back(h.path);
    keep_alive.push_back(h.keep_alive);
    off += h.head_bytes + h.content_length;
  }
  CHECK_EQ(off, buf.size());
  CHECK_EQ(paths.size(), 3u);
  if (paths.size() == 3) {
    CHECK_EQ(paths[0], std::string("/v1/chat/completions"));
    CHECK_EQ(paths[1], std::string("/ws"));
    CHECK_EQ(paths[2], std::string("/last"));
    CHECK(keep_alive[0] && keep_alive[1] && !keep_alive[2]);
  }
  // The first head's byte count stops at its own blank line.
  CHECK_EQ(all.head->head_bytes, kPostJson.size() - 27);
}

TEST(LeadingEmptyLines) {
  const Parsed p = Parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(p.ok());
  CHECK_EQ(p.head->head_bytes, p.len);
  CHECK_EQ(p.head->path, std::string_view("/"));
  CHECK(Parse("\r\n").status == ParseStatus::kNeedMore);
  CHECK(Parse("\r\n\r").status == ParseStatus::kNeedMore);
  CHECK_EQ(Refused("\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused("\r\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK_EQ(Refused(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  // Leading empty lines count against the head limit.
  Limits small;
  small.max_head_bytes = 64;
  CHECK_EQ(Refused(std::string(20, '\r'), small), 400);
  std::string many;
  for (int i = 0; i < 40; ++i) many += "\r\n";
  CHECK_EQ(Refused(many + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", small), 431);
}

// A bad method is refused before its line ends, so binary on a plain port (a TLS
// ClientHello here) is answered at once; a good prefix still waits.
TEST(BadMethodRefusedEarly) {
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  CHECK_EQ(Refused(hello), 400);
  CHECK_EQ(Refused("GE("), 400);
  CHECK_EQ(Refused(" "), 400);
  CHECK_EQ(Refused("GET\r"), 400);
  CHECK(Parse("GET").status == ParseStatus::kNeedMore);
  CHECK(Parse("GET /\x01").status == ParseStatus::kNeedMore);  // refused once the line ends
  CHECK_EQ(Refused("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  CHECK(Parse("\r").status == ParseStatus::kNeedMore);
  CHECK(Parse("\r\n\r").status == ParseStatus::kNeedMore);
}

// Once a prefix is decided (kDone or kError), the whole input is decided the same way,
// with the same reason: a parse never changes its mind as bytes arrive. The first
// input is what the fuzzer found when the early method check ran before the bare-LF
// check only on incomplete lines ("invalid method" on a prefix, "bare LF" whole).
TEST(DecidedPrefixAgreesWithWhole) {
  static const uint8_t kFound[] = {
      0x47, 0x45, 0x9c, 0x20, 0x68, 0x74, 0x5a, 0x50, 0x47, 0x45, 0x54, 0x20, 0x68, 0x74,
      0x74, 0x70, 0x3a, 0x2f, 0x2f, 0x65, 0x78, 0x1a, 0x0, 0x61, 0x54, 0x54, 0x50, 0x2f,
      0x2f, 0x70, 0x3f, 0x71, 0x3d, 0x31, 0x20, 0x48, 0x1, 0x0, 0x61, 0x5a, 0x15, 0x0,
      0xd0, 0x60, 0x0, 0x0, 0x38, 0x3a, 0x20, 0x2a, 0x2f, 0xa, 0xd, 0xa, 0xd, 0xa,
  };
  const std::string inputs[] = {
      std::string(reinterpret_cast<const char*>(kFound), sizeof(kFound)),
      "GE\x9c /\n", "GET\n", "GET\r\n", "GET / HTTP/1.1\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n", "\r\n\rGET",
      "GET / HTTP/1.1\r\nHost: h\r\nX(: b\r\n\r\n", std::string(kBrowserGet) + "junk",
  };
  Limits small;
  small.max_request_line = 8;
  small.max_head_bytes = 24;
  for (const Limits& l : {Limits{}, small}) {
    for (const std::string& in : inputs) {
      const Parsed whole = Parse(in, l);
      for (size_t k = 0; k < in.size(); ++k) {
        const Parsed part = Parse(std::string_view(in).substr(0, k), l);
        if (part.status == ParseStatus::kNeedMore) continue;
        CHECK(part.status == whole.status);
        CHECK_EQ(part.http_status(), whole.http_status());
        if (part.status == ParseStatus::kError && whole.status == ParseStatus::kError) {
          CHECK_EQ(std::string_view(part.error.reason), std::string_view(whole.error.reason));
        }
      }
    }
  }
}

TEST(KeepAliveRules) {
  struct K {
    const char* text;
    bool keep_alive;
  };
  const K cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: , ,keep-alive,\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: foo , KEEP-ALIVE \r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false},
  };
  for (const K& k : cases) {
    const Parsed p = Parse(k.text);
    CHECK(p.ok());
    CHECK_EQ(p.head->keep_alive, k.keep_alive);
  }
  const Parsed v10 = Parse("GET / HTTP/1.0\r\n\r\n");
  CHECK_EQ(v10.head->version_minor, 0);
}

TEST(UpgradeDetection) {
  const Parsed ws = Parse(kUpgrade);
  CHECK(ws.ok());
  CHECK(ws.head->upgrade_websocket);
  CHECK(ws.head->keep_alive);
  CHECK_EQ(FindHeader(*ws.head, "sec-websocket-key"), std::string_view("dGhlIHNhbXBsZSBub25jZQ=="));
  struct U {
    const char* headers;
    bool upgrade;
  };
  const U cases[] = {
      {"Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n", true},
      {"Upgrade: h2c, websocket\r\nConnection: upgrade\r\n", true},
      {"Connection: UPGRADE\r\nUpgrade: WEBSOCKET\r\n", true},
      {"Upgrade: websocket\r\n", false},
      {"Connection: Upgrade\r\n", false},
      {"Upgrade: websockets\r\nConnection: Upgrade\r\n", false},
      {"Upgrade: h2c\r\nConnection: Upgrade\r\n", false},
      {"Upgrade: websocket\r\nConnection: keep-alive\r\n", false},
  };
  for (const U& u : cases) {
    const Parsed p = Parse(std::string("GET /ws HTTP/1.1\r\nHost: h\r\n") + u.headers + "\r\n");
    CHECK(p.ok());
    CHECK_EQ(p.head->upgrade_websocket, u.upgrade);
  }
  // RFC 9110 7.8: Upgrade is ignored in HTTP/1.0.
  const Parsed old = Parse("GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
  CHECK(old.ok());
  CHECK(!old.head->upgrade_websocket);
}

TEST(ExpectContinue) {
  const Parsed p = Parse(kChunkedPost);
  CHECK(p.ok());
  CHECK(p.head->expect_continue);
  CHECK(p.head->chunked);
  CHECK(!p.head->has_content_length);
  CHECK_EQ(p.head->content_length, 0u);
  CHECK(Parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
            .head->expect_continue);
  CHECK(!Parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 101-continue\r\n\r\n").head->expect_continue);
  // RFC 9110 10.1.1: ignored in HTTP/1.0.
  CHECK(!Parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").head->expect_continue);
}

TEST(HeaderLookupIsCaseInsensitive) {
  const Parsed p = Parse(
      "GET / HTTP/1.1\r\nHOST: h\r\nX-Trace-Id: one\r\nx-trace-id: two\r\nEmpty:\r\n"
      "Spaced: \t  v a l \t \r\nObs: caf\xc3\xa9\r\n\r\n");
  CHECK(p.ok());
  const RequestHead& h = *p.head;
  CHECK_EQ(h.host, std::string_view("h"));
  CHECK_EQ(FindHeader(h, "x-trace-id"), std::string_view("one"));
  CHECK_EQ(FindHeader(h, "X-TRACE-ID"), std::string_view("one"));
  CHECK_EQ(FindHeader(h, "Host"), std::string_view("h"));
  CHECK_EQ(FindHeader(h, "spaced"), std::string_view("v a l"));
  CHECK_EQ(FindHeader(h, "obs"), std::string_view("caf\xc3\xa9"));
  CHECK_EQ(FindHeader(h, "empty"), std::string_view(""));
  CHECK_EQ(FindHeader(h, "missing"), std::string_view(""));
  CHECK_EQ(FindHeader(h, "x-trace-i"), std::string_view(""));
  CHECK_EQ(FindHeader(h, ""), std::string_view(""));
  // The view is trimmed inside the buffer.
  CHECK(p.Inside(FindHeader(h, "spaced")));
}

TEST(HostRules) {
  CHECK_EQ(Refused("GET / HTTP/1.1\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: user@evil\r\n\r\n"), 400);
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  CHECK(Parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").ok());
  CHECK(Parse("GET / HTTP/1.1\r\nHost:\r\n\r\n").ok());  // empty is allowed (RFC 9112 3.2)
  const Parsed v10 = Parse("GET / HTTP/1.0\r\n\r\n");
  CHECK(v10.ok());
  CHECK_EQ(v10.head->host, std::string_view(""));
}

// Each case a front proxy might frame differently is refused, never guessed.
TEST(SmugglingAndAbuseRefused) {
  struct R {
    const char* what;
    std::string text;
    uint16_t status;
  };
  const std::string g = "GET / HTTP/1.1\r\nHost: h\r\n";
  const std::string p = "POST / HTTP/1.1\r\nHost: h\r\n";
  const R cases[] = {
      {"CL and TE", p + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"TE and CL", p + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
      {"CL 0 and TE", p + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"two CL values", p + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"CL list", p + "Content-Length: 5, 5\r\n\r\n", 400},
      {"CL sign +", p + "Content-Length: +5\r\n\r\n", 400},
      {"CL sign -", p + "Content-Length: -5\r\n\r\n", 400},
      {"CL hex", p + "Content-Length: 0x5\r\n\r\n", 400},
      {"CL space inside", p + "Content-Length: 1 2\r\n\r\n", 400},
      {"CL empty", p + "Content-Length:\r\n\r\n", 400},
      {"CL overflow", p + "Content-Length: 18446744073709551616\r\n\r\n", 400},
      {"CL huge overflow", p + "Content-Length: 99999999999999999999999999\r\n\r\n", 400},
      {"TE chunked twice", p + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"TE list", p + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"TE chunked, chunked", p + "Transfer-Encoding: chunked, chunked\r\n\r\n", 501},
      {"TE identity", p + "Transfer-Encoding: identity\r\n\r\n", 501},
      {"TE chunkedx", p + "Transfer-Encoding: chunkedx\r\n\r\n", 501},
      {"TE empty", p + "Transfer-Encoding:\r\n\r\n", 400},
      {"TE trailing comma", p + "Transfer-Encoding: chunked,\r\n\r\n", 400},
      {"TE with params", p + "Transfer-Encoding: chunked;q=1\r\n\r\n", 400},
      {"TE vertical tab", p + "Transfer-Encoding: \vchunked\r\n\r\n", 400},
      {"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"obs-fold", g + "X-A: a\r\n b\r\n\r\n", 400},
      {"obs-fold tab", g + "X-A: a\r\n\tb\r\n\r\n", 400},
      {"folded TE", p + "X-A: a\r\n Transfer-Encoding: chunked\r\n\r\n", 400},
      {"space before colon", p + "Content-Length : 5\r\n\r\n", 400},
      {"tab before colon", g + "X-A\t: b\r\n\r\n", 400},
      {"space first line", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
      {"bare LF header", g + "X-A: b\n\r\n", 400},
      {"bare LF end", g + "X-A: b\r\n\n", 400},
      {"bare LF request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
      {"bare CR header", g + "X-A: b\rX-B: c\r\n\r\n", 400},
      {"bare CR end", g + "\r\r\n", 400},
      {"bare CR request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
      {"NUL in value", g + std::string("X-A: a\0b\r\n\r\n", 12), 400},
      {"ESC in value", g + "X-A: \x1b[31m\r\n\r\n", 400},
      {"DEL in value", g + "X-A: a\x7f\r\n\r\n", 400},
      {"no colon", g + "X-A b\r\n\r\n", 400},
      {"empty name", g + ": b\r\n\r\n", 400},
      {"bad name char", g + "X(A): b\r\n\r\n", 400},
      {"non-ASCII name", g + "X-\xc3\xa9: b\r\n\r\n", 400},
      {"NUL in name", g + std::string("X\0A: b\r\n\r\n", 10), 400},
      {"bad method char", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"tab in target", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"NUL in target", std::string("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 31), 400},
      {"DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"no target", "GET HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"no version", "GET /\r\nHost: h\r\n\r\n", 400},
      {"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"version 1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
      {"version junk", "GET / HTTP/x.1\r\nHost: h\r\n\r\n", 400},
      {"version 2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"version 1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"version 0.9", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
      {"version 3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
  };
  for (const R& r : cases) {
    const uint16_t got = Refused(r.text);
    if (got != r.status) {
      std::fprintf(stderr, "    case '%s': got %u, want %u\n", r.what, got, r.status);
    }
    CHECK_EQ(got, r.status);
  }
  // Identical duplicate Content-Length values are one value (RFC 9112 6.3).
  const Parsed dup = Parse(p + "Content-Length: 5\r\ncontent-length: 005\r\n\r\n");
  CHECK(dup.ok());
  CHECK_EQ(dup.head->content_length, 5u);
  // The largest value that fits is parsed exactly, then refused by the body limit.
  Limits unlimited;
  unlimited.max_body_bytes = UINT64_MAX;
  const Parsed big = Parse(p + "Content-Length: 18446744073709551615\r\n\r\n", unlimited);
  CHECK(big.ok());
  CHECK_EQ(big.head->content_length, UINT64_MAX);
  // TE is case-insensitive and trimmed.
  const Parsed te = Parse(p + "Transfer-Encoding:  ChUnKeD \t\r\n\r\n");
  CHECK(te.ok());
  CHECK(te.head->chunked);
  // HTAB and obs-text are allowed in values.
  CHECK(Parse(g + "X-A: a\tb \xff\r\n\r\n").ok());
}

TEST(LimitsAndStatusCodes) {
  Limits l;
  l.max_request_line = 32;
  l.max_head_bytes = 128;
  l.max_headers = 3;
  l.max_body_bytes = 100;
  // Request line: exactly at the limit passes, one past is 414 (complete or not).
  const std::string at = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1";
  CHECK_EQ(at.size(), 32u);
  CHECK(Parse(at + "\r\nHost: h\r\n\r\n", l).ok());
  const std::string over = "GET /" + std::string(32 - 13, 'a') + " HTTP/1.1";
  CHECK_EQ(Refused(over + "\r\nHost: h\r\n\r\n", l), 414);
  CHECK_EQ(Refused("GET /" + std::string(40, 'a'), l), 414);   // no line end yet
  CHECK(Parse("GET /" + std::string(28, 'a'), l).status == ParseStatus::kNeedMore);
  CHECK_EQ(Refused("GET /" + std::string(200, 'a'), l), 414);
  // Head bytes: exactly max_head_bytes passes, one more is 431.
  const std::string start = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  const std::string fits = start + std::string(128 - start.size() - 4, 'v') + "\r\n\r\n";
  CHECK_EQ(fits.size(), 128u);
  CHECK(Parse(fits, l).ok());
  CHECK(Parse(fits + "trailing body bytes", l).ok());
  const std::string big = start + std::string(128 - start.size() - 3, 'v') + "\r\n\r\n";
  CHECK_EQ(Refused(big, l), 431);
  CHECK_EQ(Refused(start + std::string(200, 'v'), l), 431);  // incomplete, past the limit
  CHECK(Parse(start + std::string(90, 'v'), l).status == ParseStatus::kNeedMore);
  // Header count: max_headers passes, one more is 431.
  CHECK(Parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", l).ok());
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", l), 431);
  // Body: Content-Length at the limit passes, one more is 413.
  CHECK(Parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", l).ok());
  CHECK_EQ(Refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", l), 413);
  // Versions and codings.
  CHECK_EQ(Refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n", l), 505);
  CHECK_EQ(Refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", l), 501);
  // max_headers above kMaxHeaders is held to kMaxHeaders.
  Limits wide;
  wide.max_headers = 1000;
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (uint32_t i = 1; i < kMaxHeaders; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  const Parsed full = Parse(many + "\r\n", wide);
  CHECK(full.ok());
  CHECK_EQ(full.head->header_count, kMaxHeaders);
  CHECK_EQ(Refused(many + "X-Last: v\r\n\r\n", wide), 431);
  // Default limits: a 9 KiB request line is 414, 17 KiB of headers 431.
  CHECK_EQ(Refused("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n"), 414);
  CHECK_EQ(Refused("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(17000, 'v') + "\r\n\r\n"), 431);
}

// Every proper prefix of a valid request is kNeedMore, and the whole one parses the
// same whatever follows it.
TEST(NeedMoreOnEveryPrefix) {
  const std::string_view requests[] = {
      kBrowserGet,
      kPostJson.substr(0, kPostJson.size() - 27),
      kUpgrade,
      kChunkedPost,
      "\r\n\r\nOPTIONS * HTTP/1.0\r\n\r\n",
      "GET http://h/x HTTP/1.1\r\nHost: h\r\nA:\r\nB: \t\r\n\r\n",
  };
  for (std::string_view req : requests) {
    const Parsed whole = Parse(req);
    CHECK(whole.ok());
    CHECK_EQ(whole.head->head_bytes, req.size());
    for (size_t k = 0; k < req.size(); ++k) {
      const Parsed part = Parse(req.substr(0, k));
      if (part.status != ParseStatus::kNeedMore) {
        std::fprintf(stderr, "    prefix %zu of %zu: status %d\n", k, req.size(),
                     static_cast<int>(part.status));
      }
      CHECK(part.status == ParseStatus::kNeedMore);
    }
    const Parsed more = Parse(std::string(req) + "GET / HTTP/1.1\r\n");
    CHECK(more.ok());
    CHECK_EQ(more.head->head_bytes, req.size());
    CHECK_EQ(more.head->header_count, whole.head->header_count);
    CHECK_EQ(more.head->target, whole.head->target);
  }
}

TEST(FindHeadEndSplits) {
  const std::string_view req = kUpgrade;
  const auto* p = reinterpret_cast<const uint8_t*>(req.data());
  CHECK_EQ(FindHeadEnd(p, req.size(), 0), req.size());
  CHECK_EQ(FindHeadEnd(p, req.size() - 1, 0), 0u);
  CHECK_EQ(FindHeadEnd(p, 0, 0), 0u);
  CHECK_EQ(FindHeadEnd(p, 3, 0), 0u);
  // Fed in two parts at every split, searching the second from where the first ended,
  // the terminator is found at the same place.
  for (size_t s = 0; s <= req.size(); ++s) {
    const size_t first = FindHeadEnd(p, s, 0);
    const size_t found = first != 0 ? first : FindHeadEnd(p, req.size(), s);
    CHECK_EQ(found, req.size());
  }
  // One byte at a time.
  size_t found = 0;
  for (size_t n = 1; n <= req.size() && found == 0; ++n) found = FindHeadEnd(p, n, n - 1);
  CHECK_EQ(found, req.size());
  const std::string_view tricky = "\r\n\r\r\n\n\r\n\r\n";
  CHECK_EQ(FindHeadEnd(reinterpret_cast<const uint8_t*>(tricky.data()), tricky.size(), 0), 4u + 6u);
  CHECK_EQ(FindHeadEnd(reinterpret_cast<const uint8_t*>(tricky.data()), tricky.size(), 100), 0u);
  const std::string_view plain = "\r\n\r\n";
  CHECK_EQ(FindHeadEnd(reinterpret_cast<const uint8_t*>(plain.data()), 4, 0), 4u);
  CHECK_EQ(FindHeadEnd(reinterpret_cast<const uint8_t*>(plain.data()), 4, 3), 4u);
  CHECK_EQ(FindHeadEnd(reinterpret_cast<const uint8_t*>(plain.data()), 4, 4), 0u);
}

// --- the chunked decoder ------------------------------------------------------------------

namespace {

struct Decoded {
  ChunkedDecoder::Result result = ChunkedDecoder::Result::kNeedMore;
  std::string body;
  size_t consumed = 0;  // total input used
  uint16_t status = 0;
};

// Feeds `in` to a fresh decoder in pieces of at most `step` bytes (0: whole), each
// piece an exact-size heap copy, decoding into a separate output.
Decoded DecodeSteps(std::string_view in, size_t step, uint64_t max_body = 1 << 20,
                    uint32_t max_trailer = 16384) {
  ChunkedDecoder d(max_body, max_trailer);
  Decoded r;
  size_t off = 0;
  do {
    const size_t n = step == 0 ? in.size() - off : std::min(step, in.size() - off);
    std::unique_ptr<uint8_t[]> piece(new uint8_t[n ? n : 1]);
    if (n) std::memcpy(piece.get(), in.data() + off, n);
    std::vector<uint8_t> out(n + 1);
    size_t consumed = 0, out_len = 0;
    ParseError e{};
    r.result = d.Decode(piece.get(), n, out.data(), &consumed, &out_len, &e);
    r.body.append(reinterpret_cast<const char*>(out.data()), out_len);
    r.consumed += consumed;
    off += n;
    if (r.result == ChunkedDecoder::Result::kError) r.status = e.http_status;
    if (r.result != ChunkedDecoder::Result::kNeedMore) break;
    CHECK_EQ(consumed, n);
  } while (off < in.size());
  CHECK_EQ(r.body.size(), d.body_bytes());
  return r;
}

// Decodes in two calls split at `split`.
Decoded DecodeSplit(std::string_view in, size_t split) {
  ChunkedDecoder d;
  Decoded r;
  const std::string_view parts[] = {in.substr(0, split), in.substr(split)};
  for (std::string_view part : parts) {
    std::vector<uint8_t> buf(part.begin(), part.end());
    buf.push_back(0);
    std::vector<uint8_t> out(part.size() + 1);
    size_t consumed = 0, out_len = 0;
    ParseError e{};
    r.result = d.Decode(buf.data(), part.size(), out.data(), &consumed, &out_len, &e);
    r.body.append(reinterpret_cast<const char*>(out.data()), out_len);
    r.consumed += consumed;
    if (r.result == ChunkedDecoder::Result::kError) r.status = e.http_status;
    if (r.result != ChunkedDecoder::Result::kNeedMore) break;
  }
  return r;
}

constexpr std::string_view kChunked =
    "7\r\nMozilla\r\n"
    "9;name=value;q=\"a;b\"\r\nDeveloper\r\n"
    "07\r\nNetwork\r\n"
    "A\r\n0123456789\r\n"
    "0\r\n"
    "\r\n";
constexpr std::string_view kChunkedBody = "MozillaDeveloperNetwork0123456789";

}  // namespace

TEST(ChunkedWhole) {
  const Decoded r = DecodeSteps(kChunked, 0);
  CHECK(r.result == ChunkedDecoder::Result::kDone);
  CHECK_EQ(r.body, std::string(kChunkedBody));
  CHECK_EQ(r.consumed, kChunked.size());
  // Bytes after the final CRLF belong to the next request.
  const std::string next = std::string(kChunked) + "GET / HTTP/1.1\r\n";
  const Decoded p = DecodeSteps(next, 0);
  CHECK(p.result == ChunkedDecoder::Result::kDone);
  CHECK_EQ(p.consumed, kChunked.size());
  // Only the last chunk: an empty body.
  const Decoded empty = DecodeSteps("0\r\n\r\n", 0);
  CHECK(empty.result == ChunkedDecoder::Result::kDone);
  CHECK_EQ(empty.body, std::string());
  // Upper- and lowercase hex, leading zeros.
  std::string hex = "1A\r\n" + std::string(26, 'x') + "\r\n1a\r\n" + std::string(26, 'y') +
                    "\r\n0000000000000000000001\r\nz\r\n000\r\n\r\n";
  const Decoded h = DecodeSteps(hex, 0);
  CHECK(h.result == ChunkedDecoder::Result::kDone);
  CHECK_EQ(h.body, std::string(26, 'x') + std::string(26, 'y') + "z");
}

TEST(ChunkedEverySplitAndOneByteAtATime) {
  const std::string with_trailer =
      "4\r\nWiki\r\n5;ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0;last\r\n"
      "Expires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Sum: 1\r\n\r\n";
  const std::string inputs[] = {std::string(kChunked), with_trailer};
  const std::string bodies[] = {std::string(kChunkedBody), "Wikipedia in\r\n\r\nchunks."};
  for (int k = 0; k < 2; ++k) {
    const std::string& in = inputs[k];
    for (size_t s = 0; s <= in.size(); ++s) {
      const Decoded r = DecodeSplit(in, s);
      CHECK(r.result == ChunkedDecoder::Result::kDone);
      CHECK_EQ(r.body, bodies[k]);
      CHECK_EQ(r.consumed, in.size());
    }
    for (size_t step : {1u, 2u, 3u, 7u}) {
      const Decoded r = DecodeSteps(in, step);
      CHECK(r.result == ChunkedDecoder::Result::kDone);
      CHECK_EQ(r.body, bodies[k]);
      CHECK_EQ(r.consumed, in.size());
    }
  }
}

// The decoded body compacts to the front of the same buffer (out == in), as the
// connection code uses it, including across calls with the undecoded rest behind it.
TEST(ChunkedInPlace) {
  std::string in = std::string(kChunked) + "NEXT";
  std::vector<uint8_t> buf(in.begin(), in.end());
  ChunkedDecoder d;
  size_t consumed = 0, out_len = 0;
  ParseError e{};
  CHECK(d.Decode(buf.data(), buf.size(), buf.data(), &consumed, &out_len, &e) ==
        ChunkedDecoder::Result::kDone);
  CHECK_EQ(std::string(buf.begin(), buf.begin() + out_len), std::string(kChunkedBody));
  CHECK_EQ(consumed, kChunked.size());
  CHECK_EQ(std::string(buf.begin() + consumed, buf.end()), std::string("NEXT"));

  // Arriving in 5-byte reads appended to the buffer: body at the front, rest behind.
  ChunkedDecoder inc;
  std::vector<uint8_t> conn;
  size_t body_end = 0;
  ChunkedDecoder::Result res = ChunkedDecoder::Result::kNeedMore;
  for (size_t off = 0; off < kChunked.size() && res == ChunkedDecoder::Result::kNeedMore; off += 5) {
    const std::string_view read = kChunked.substr(off, 5);
    conn.insert(conn.end(), read.begin(), read.end());
    res = inc.Decode(conn.data() + body_end, conn.size() - body_end, conn.data() + body_end,
                     &consumed, &out_len, &e);
    CHECK_EQ(consumed, conn.size() - body_end);
    body_end += out_len;
    conn.resize(body_end);  // the undecoded rest was consumed (kept in the decoder's state)
  }
  CHECK(res == ChunkedDecoder::Result::kDone);
  CHECK_EQ(std::string(conn.begin(), conn.begin() + body_end), std::string(kChunkedBody));
}

TEST(ChunkedErrors) {
  struct E {
    const char* what;
    std::string in;
    uint16_t status;
  };
  const E cases[] = {
      {"no digits", "\r\n", 400},
      {"non-hex", "g\r\n", 400},
      {"sign", "+5\r\nhello\r\n0\r\n\r\n", 400},
      {"space before CRLF", "5 \r\nhello\r\n0\r\n\r\n", 400},
      {"space before ext", "5 ;a\r\nhello\r\n0\r\n\r\n", 400},
      {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 400},
      {"size overflow", "10000000000000000\r\n", 400},
      {"size overflow long", "FFFFFFFFFFFFFFFFFFFFFFFF\r\n", 400},
      {"bare LF after size", "5\nhello\r\n0\r\n\r\n", 400},
      {"bare CR after size", "5\rhello\r\n0\r\n\r\n", 400},
      {"missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 400},
      {"LF only after data", "5\r\nhello\n0\r\n\r\n", 400},
      {"CR only after data", "5\r\nhello\r0\r\n\r\n", 400},
      {"data longer than size", "3\r\nhello\r\n0\r\n\r\n", 400},
      {"NUL in ext", std::string("5;a\0b\r\nhello\r\n0\r\n\r\n", 19), 400},
      {"bare LF in ext", "5;a\nb\r\nhello\r\n0\r\n\r\n", 400},
      {"ext too long", "5;" + std::string(5000, 'e') + "\r\nhello\r\n0\r\n\r\n", 400},
      {"leading zeros too long", std::string(5000, '0') + "5\r\nhello\r\n0\r\n\r\n", 400},
      {"bare LF in trailer", "0\r\nX: a\nY: b\r\n\r\n", 400},
      {"bare CR in trailer", "0\r\nX: a\rY: b\r\n\r\n", 400},
      {"obs-fold trailer", "0\r\nX: a\r\n b\r\n\r\n", 400},
      {"control in trailer", "0\r\nX: \x01\r\n\r\n", 400},
      {"final bare LF", "0\r\n\n", 400},
      {"final CR junk", "0\r\n\rX", 400},
      {"trailer too large", "0\r\nX: " + std::string(20000, 't') + "\r\n\r\n", 400},
      {"body over limit", "100001\r\n", 413},
  };
  for (const E& c : cases) {
    const Decoded whole = DecodeSteps(c.in, 0);
    const Decoded bytes = DecodeSteps(c.in, 1);
    if (whole.status != c.status) {
      std::fprintf(stderr, "    case '%s': got %u, want %u\n", c.what, whole.status, c.status);
    }
    CHECK(whole.result == ChunkedDecoder::Result::kError);
    CHECK_EQ(whole.status, c.status);
    CHECK(bytes.result == ChunkedDecoder::Result::kError);
    CHECK_EQ(bytes.status, c.status);
    CHECK_EQ(bytes.body, whole.body);
    CHECK_EQ(bytes.consumed, whole.consumed);
  }
  // The largest size that fits, with an unlimited body, is accepted as a size.
  const Decoded max = DecodeSteps("FFFFFFFFFFFFFFFF\r\nabc", 0, UINT64_MAX);
  CHECK(max.result == ChunkedDecoder::Result::kNeedMore);
  CHECK_EQ(max.body, std::string("abc"));
  // An error is sticky; Reset starts over.
  ChunkedDecoder d;
  uint8_t buf[8] = {'x', '\r', '\n'};
  uint8_t out[8];
  size_t consumed = 0, out_len = 0;
  ParseError e{};
  CHECK(d.Decode(buf, 3, out, &consumed, &out_len, &e) == ChunkedDecoder::Result::kError);
  const uint8_t ok[] = {'0', '\r', '\n', '\r', '\n'};
  CHECK(d.Decode(ok, 5, out, &consumed, &out_len, &e) == ChunkedDecoder::Result::kError);
  d.Reset();
  CHECK(d.Decode(ok, 5, out, &consumed, &out_len, &e) == ChunkedDecoder::Result::kDone);
  CHECK_EQ(consumed, 5u);
  // After kDone, nothing more is consumed.
  CHECK(d.Decode(ok, 5, out, &consumed, &out_len, &e) == ChunkedDecoder::Result::kDone);
  CHECK_EQ(consumed, 0u);
  CHECK_EQ(out_len, 0u);
}

TEST(ChunkedBodyLimit) {
  // Exactly max_body_bytes passes; one more byte in a later chunk is 413, before its data.
  const std::string at = "8\r\n12345678\r\n2\r\n90\r\n0\r\n\r\n";
  const Decoded ok = DecodeSteps(at, 0, 10);
  CHECK(ok.result == ChunkedDecoder::Result::kDone);
  CHECK_EQ(ok.body, std::string("1234567890"));
  const std::string over = "8\r\n12345678\r\n3\r\n901\r\n0\r\n\r\n";
  for (size_t step : {0u, 1u}) {
    const Decoded r = DecodeSteps(over, step, 10);
    CHECK(r.result == ChunkedDecoder::Result::kError);
    CHECK_EQ(r.status, 413);
    CHECK_EQ(r.body, std::string("12345678"));
  }
  // Many small chunks add up.
  std::string small;
  for (int i = 0; i < 11; ++i) small += "1\r\nx\r\n";
  small += "0\r\n\r\n";
  CHECK_EQ(DecodeSteps(small, 0, 10).status, 413);
  CHECK(DecodeSteps(small, 0, 11).result == ChunkedDecoder::Result::kDone);
  // A trailer section within its bound passes; an empty one always does.
  const std::string trailer = "0\r\nA: b\r\n\r\n";
  CHECK(DecodeSteps(trailer, 0, 10, 6).result == ChunkedDecoder::Result::kDone);  // "A: b\r\n"
  CHECK_EQ(DecodeSteps(trailer, 0, 10, 5).status, 400);
  CHECK(DecodeSteps("0\r\n\r\n", 0, 10, 0).result == ChunkedDecoder::Result::kDone);
}

// This thread's CPU seconds: the development machine is shared, so wall time would
// count other people's builds.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Throughput on typical heads per CPU second, printed, not asserted (speed belongs in
// benchmarks).
TEST(ThroughputPrinted) {
  const std::string_view heads[] = {kBrowserGet, kUpgrade, kChunkedPost};
  for (std::string_view head : heads) {
    std::vector<uint8_t> buf(head.begin(), head.end());
    RequestHead h;
    ParseError e{};
    const int iters = myelin::test::kSanitized ? 2000 : 400000;
    uint64_t sink = 0;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      const double t0 = CpuSeconds();
      for (int i = 0; i < iters; ++i) {
        const ParseStatus st = ParseRequestHead(buf.data(), buf.size(), Limits{}, &h, &e);
        sink += static_cast<uint64_t>(st) + h.head_bytes;
      }
      const double s = CpuSeconds() - t0;
      best = std::max(best, static_cast<double>(buf.size()) * iters / s / 1e6);
    }
    CHECK_EQ(sink, 3ull * iters * buf.size());
    std::printf("  ParseRequestHead %4zu-byte head: %7.0f MB/s per CPU second (best of 3)\n", buf.size(), best);
  }
  std::string chunked;
  for (int i = 0; i < 64; ++i) chunked += "400\r\n" + std::string(1024, 'd') + "\r\n";
  chunked += "0\r\n\r\n";
  std::vector<uint8_t> out(chunked.size());
  const int iters = myelin::test::kSanitized ? 20 : 5000;
  const double t0 = CpuSeconds();
  size_t total = 0;
  for (int i = 0; i < iters; ++i) {
    ChunkedDecoder d;
    size_t consumed = 0, out_len = 0;
    ParseError e{};
    d.Decode(reinterpret_cast<const uint8_t*>(chunked.data()), chunked.size(), out.data(),
             &consumed, &out_len, &e);
    total += out_len;
  }
  const double s = CpuSeconds() - t0;
  CHECK_EQ(total, static_cast<size_t>(iters) * 65536);
  std::printf("  ChunkedDecoder 1 KiB chunks: %7.0f MB/s per CPU second\n", chunked.size() * iters / s / 1e6);
}
