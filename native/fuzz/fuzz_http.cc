// libFuzzer target for http/request_parser.h. For every input, under the default
// limits and under small ones:
//   - ParseRequestHead is deterministic, and on kDone every view lies inside the
//     input, head_bytes <= len and <= max_head_bytes, the head ends in CRLFCRLF, each
//     field has its grammar's shape (token names and method, trimmed control-free
//     values, a target that path and query rebuild), and the derived fields agree with
//     the headers (host, authorization, no CL with chunked, CL within the limit);
//   - a re-parse of the input truncated to head_bytes gives the same head, and a
//     fuzzer-chosen proper prefix gives kNeedMore;
//   - any prefix that is already decided (kDone or kError) decides the whole input the
//     same way: a parse never changes its mind when more bytes arrive;
//   - FindHeadEnd finds the same terminator whole and split across two calls, and
//     never one past head_bytes.
// Then ChunkedDecoder runs on the body (the bytes after a chunked head, otherwise the
// whole input) with default and small limits: whole, in place (out == in), split at a
// fuzzer-chosen point and, for short inputs, one byte at a time; all must agree on
// the result, the bytes consumed, the body and the error status. Any violation traps.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.h"

namespace {

using myelin::http::ChunkedDecoder;
using myelin::http::FindHeadEnd;
using myelin::http::FindHeader;
using myelin::http::kMaxHeaders;
using myelin::http::Limits;
using myelin::http::ParseError;
using myelin::http::ParseRequestHead;
using myelin::http::ParseStatus;
using myelin::http::RequestHead;

#define FUZZ_ASSERT(cond) \
  do {                    \
    if (!(cond)) __builtin_trap(); \
  } while (0)

std::unique_ptr<uint8_t[]> Copy(const uint8_t* data, size_t n) {
  std::unique_ptr<uint8_t[]> p(new uint8_t[n ? n : 1]);
  if (n) std::memcpy(p.get(), data, n);
  return p;
}

bool Inside(std::string_view v, const uint8_t* base, size_t len) {
  if (v.empty()) return true;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= base && p <= base + len && v.size() <= static_cast<size_t>(base + len - p);
}

// Offset of a view from base, or -1 for an empty one (empty views may point anywhere).
long Off(std::string_view v, const uint8_t* base) {
  return v.empty() ? -1 : static_cast<long>(reinterpret_cast<const uint8_t*>(v.data()) - base);
}

bool SameView(std::string_view a, const uint8_t* base_a, std::string_view b,
              const uint8_t* base_b) {
  return a.size() == b.size() && Off(a, base_a) == Off(b, base_b);
}

bool SameHead(const RequestHead& a, const uint8_t* ba, const RequestHead& b, const uint8_t* bb) {
  if (a.method != b.method || a.version_minor != b.version_minor ||
      a.header_count != b.header_count || a.head_bytes != b.head_bytes ||
      a.keep_alive != b.keep_alive || a.chunked != b.chunked ||
      a.has_content_length != b.has_content_length || a.content_length != b.content_length ||
      a.upgrade_websocket != b.upgrade_websocket || a.expect_continue != b.expect_continue) {
    return false;
  }
  if (!SameView(a.method_text, ba, b.method_text, bb) || !SameView(a.target, ba, b.target, bb) ||
      !SameView(a.path, ba, b.path, bb) || !SameView(a.query, ba, b.query, bb) ||
      !SameView(a.host, ba, b.host, bb) || !SameView(a.authorization, ba, b.authorization, bb)) {
    return false;
  }
  for (uint32_t i = 0; i < a.header_count && i < kMaxHeaders; ++i) {
    if (!SameView(a.headers[i].name, ba, b.headers[i].name, bb) ||
        !SameView(a.headers[i].value, ba, b.headers[i].value, bb)) {
      return false;
    }
  }
  return true;
}

struct Outcome {
  ParseStatus status;
  ParseError error{0, nullptr};
  std::unique_ptr<RequestHead> head = std::make_unique<RequestHead>();
};

Outcome Parse(const uint8_t* p, size_t n, const Limits& limits) {
  Outcome o;
  o.status = ParseRequestHead(p, n, limits, o.head.get(), &o.error);
  return o;
}

bool Same(const Outcome& a, const uint8_t* ba, const Outcome& b, const uint8_t* bb) {
  if (a.status != b.status) return false;
  if (a.status == ParseStatus::kError) {
    return a.error.http_status == b.error.http_status && a.error.reason == b.error.reason;
  }
  if (a.status == ParseStatus::kDone) return SameHead(*a.head, ba, *b.head, bb);
  return true;
}

bool IsTokenChar(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == 0 || !IsTokenChar(static_cast<uint8_t>(c))) return false;
  }
  return true;
}

void CheckDone(const RequestHead& h, const uint8_t* data, size_t size, const Limits& limits) {
  FUZZ_ASSERT(h.head_bytes >= 4 && h.head_bytes <= size && h.head_bytes <= limits.max_head_bytes);
  FUZZ_ASSERT(std::memcmp(data + h.head_bytes - 4, "\r\n\r\n", 4) == 0);
  FUZZ_ASSERT(h.version_minor <= 1);
  FUZZ_ASSERT(h.header_count <= limits.max_headers && h.header_count <= kMaxHeaders);
  const std::string_view views[] = {h.method_text, h.target, h.path, h.query, h.host,
                                    h.authorization};
  for (std::string_view v : views) FUZZ_ASSERT(Inside(v, data, h.head_bytes));
  FUZZ_ASSERT(IsToken(h.method_text));
  FUZZ_ASSERT(!h.target.empty() && (h.target[0] == '/' || h.target == "*"));
  for (char c : h.target) {
    const auto u = static_cast<uint8_t>(c);
    FUZZ_ASSERT(u > 0x20 && u < 0x7F && u != '#');
  }
  // path and query rebuild the target.
  FUZZ_ASSERT(h.path.data() == h.target.data());
  if (h.path.size() == h.target.size()) {
    FUZZ_ASSERT(h.query.empty());
  } else {
    FUZZ_ASSERT(h.target[h.path.size()] == '?');
    FUZZ_ASSERT(h.path.find('?') == std::string_view::npos);
    FUZZ_ASSERT(h.query == h.target.substr(h.path.size() + 1));
  }
  for (uint32_t i = 0; i < h.header_count; ++i) {
    const auto& [name, value] = h.headers[i];
    FUZZ_ASSERT(Inside(name, data, h.head_bytes) && Inside(value, data, h.head_bytes));
    FUZZ_ASSERT(IsToken(name));
    // The name is followed by ':' in the buffer: nothing between them.
    FUZZ_ASSERT(name.data()[name.size()] == ':');
    for (char c : value) {
      const auto u = static_cast<uint8_t>(c);
      FUZZ_ASSERT(u == '\t' || (u >= 0x20 && u != 0x7F));
    }
    if (!value.empty()) {
      FUZZ_ASSERT(value.front() != ' ' && value.front() != '\t');
      FUZZ_ASSERT(value.back() != ' ' && value.back() != '\t');
    }
  }
  FUZZ_ASSERT(!(h.chunked && h.has_content_length));
  if (!h.has_content_length) FUZZ_ASSERT(h.content_length == 0);
  if (h.has_content_length) FUZZ_ASSERT(h.content_length <= limits.max_body_bytes);
  if (h.chunked) FUZZ_ASSERT(h.version_minor == 1);
  // host is the only Host header; authorization the first Authorization.
  FUZZ_ASSERT(h.host == FindHeader(h, "HOST"));
  FUZZ_ASSERT(h.authorization == FindHeader(h, "authorization"));
  // Exactly one Host in HTTP/1.1, at most one in 1.0.
  uint32_t hosts = 0;
  for (uint32_t i = 0; i < h.header_count; ++i) {
    const std::string_view n = h.headers[i].name;
    if (n.size() == 4 && (n[0] | 0x20) == 'h' && (n[1] | 0x20) == 'o' && (n[2] | 0x20) == 's' &&
        (n[3] | 0x20) == 't') {
      ++hosts;
    }
  }
  FUZZ_ASSERT(h.version_minor == 1 ? hosts == 1 : hosts <= 1);
  if (h.version_minor == 0) FUZZ_ASSERT(!h.upgrade_websocket && !h.expect_continue);
}

void CheckHead(const uint8_t* data, size_t size, const Limits& limits, size_t split) {
  const auto exact = Copy(data, size);
  const Outcome a = Parse(exact.get(), size, limits);
  const Outcome b = Parse(exact.get(), size, limits);
  FUZZ_ASSERT(Same(a, exact.get(), b, exact.get()));
  if (a.status == ParseStatus::kError) {
    const uint16_t s = a.error.http_status;
    FUZZ_ASSERT(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
    FUZZ_ASSERT(a.error.reason != nullptr && a.error.reason[0] != '\0');
  }
  if (a.status == ParseStatus::kNeedMore) FUZZ_ASSERT(size <= limits.max_head_bytes);

  if (a.status == ParseStatus::kDone) {
    const RequestHead& h = *a.head;
    CheckDone(h, exact.get(), size, limits);
    const auto cut = Copy(data, h.head_bytes);
    const Outcome c = Parse(cut.get(), h.head_bytes, limits);
    FUZZ_ASSERT(Same(a, exact.get(), c, cut.get()));
    // FindHeadEnd stops at the head's end, or earlier only inside leading empty lines.
    const size_t end = FindHeadEnd(exact.get(), size, 0);
    FUZZ_ASSERT(end != 0 && end <= h.head_bytes);
    for (size_t i = 0; end < h.head_bytes && i < end; ++i) {
      FUZZ_ASSERT(exact[i] == '\r' || exact[i] == '\n');
    }
  }

  // A decided prefix decides the whole input the same way; a proper prefix of a
  // complete head is undecided.
  if (split < size) {
    const auto pre = Copy(data, split);
    const Outcome p = Parse(pre.get(), split, limits);
    if (p.status != ParseStatus::kNeedMore) FUZZ_ASSERT(Same(p, pre.get(), a, exact.get()));
    if (a.status == ParseStatus::kDone && split < a.head->head_bytes) {
      FUZZ_ASSERT(p.status == ParseStatus::kNeedMore);
    }
  }

  // FindHeadEnd split across two calls finds what one call finds.
  const size_t whole = FindHeadEnd(exact.get(), size, 0);
  const size_t first = FindHeadEnd(exact.get(), split <= size ? split : size, 0);
  const size_t second = first != 0 ? first : FindHeadEnd(exact.get(), size, split);
  FUZZ_ASSERT(second == whole);
  FUZZ_ASSERT(whole == 0 || (whole >= 4 && whole <= size &&
                             std::memcmp(exact.get() + whole - 4, "\r\n\r\n", 4) == 0));
}

struct Decoded {
  ChunkedDecoder::Result result = ChunkedDecoder::Result::kNeedMore;
  std::string body;
  size_t consumed = 0;
  uint16_t status = 0;
};

// One Decode call on an exact-size copy of in[0, n), appending to *r.
bool Step(ChunkedDecoder* d, const uint8_t* in, size_t n, bool in_place, Decoded* r) {
  auto buf = Copy(in, n);
  std::unique_ptr<uint8_t[]> separate(new uint8_t[n ? n : 1]);
  uint8_t* out = in_place ? buf.get() : separate.get();
  size_t consumed = ~size_t{0}, out_len = ~size_t{0};
  ParseError e{0, nullptr};
  r->result = d->Decode(buf.get(), n, out, &consumed, &out_len, &e);
  FUZZ_ASSERT(consumed <= n && out_len <= consumed);
  r->body.append(reinterpret_cast<const char*>(out), out_len);
  r->consumed += consumed;
  FUZZ_ASSERT(d->body_bytes() == r->body.size());
  if (r->result == ChunkedDecoder::Result::kNeedMore) FUZZ_ASSERT(consumed == n);
  if (r->result == ChunkedDecoder::Result::kError) {
    FUZZ_ASSERT(e.http_status == 400 || e.http_status == 413);
    FUZZ_ASSERT(e.reason != nullptr);
    r->status = e.http_status;
  }
  return r->result == ChunkedDecoder::Result::kNeedMore;
}

void CheckChunked(const uint8_t* in, size_t n, size_t split, uint64_t max_body,
                  uint32_t max_trailer) {
  Decoded whole, in_place, two;
  {
    ChunkedDecoder d(max_body, max_trailer);
    Step(&d, in, n, false, &whole);
  }
  {
    ChunkedDecoder d(max_body, max_trailer);
    Step(&d, in, n, true, &in_place);
  }
  {
    ChunkedDecoder d(max_body, max_trailer);
    if (Step(&d, in, split, false, &two)) Step(&d, in + split, n - split, false, &two);
  }
  const Decoded* all[] = {&in_place, &two};
  for (const Decoded* r : all) {
    FUZZ_ASSERT(r->result == whole.result && r->consumed == whole.consumed &&
                r->status == whole.status && r->body == whole.body);
  }
  FUZZ_ASSERT(whole.body.size() <= max_body);
  if (n <= 2048) {
    Decoded bytes;
    ChunkedDecoder d(max_body, max_trailer);
    for (size_t i = 0; i < n && Step(&d, in + i, 1, true, &bytes);) ++i;
    FUZZ_ASSERT(bytes.result == whole.result && bytes.consumed == whole.consumed &&
                bytes.status == whole.status && bytes.body == whole.body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A split point the fuzzer steers through the input's last and middle bytes.
  const size_t split =
      size == 0 ? 0 : (data[size - 1] * 257u + data[size / 2] * 31u + size) % (size + 1);

  Limits small;
  small.max_request_line = 48;
  small.max_head_bytes = 160;
  small.max_headers = 4;
  small.max_body_bytes = 64;
  const Limits limits[] = {Limits{}, small};
  for (const Limits& l : limits) CheckHead(data, size, l, split);

  // The body after a chunked head, or the whole input as a body.
  const uint8_t* body = data;
  size_t body_len = size;
  {
    const auto exact = Copy(data, size);
    RequestHead h;
    ParseError e{0, nullptr};
    if (ParseRequestHead(exact.get(), size, Limits{}, &h, &e) == ParseStatus::kDone && h.chunked) {
      body = data + h.head_bytes;
      body_len = size - h.head_bytes;
    }
  }
  const size_t body_split = body_len == 0 ? 0 : split % (body_len + 1);
  CheckChunked(body, body_len, body_split, 1 << 20, 16384);
  CheckChunked(body, body_len, body_split, 64, 24);
  return 0;
}
