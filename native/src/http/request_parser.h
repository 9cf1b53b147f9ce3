// HTTP/1.1 request parsing for the gateway (RFC 9112, server side only).
//
// Two pieces, both pure and allocation-free, so they run straight on a connection's
// receive bytes and can be fuzzed on their own (native/fuzz/fuzz_http.cc):
//   - ParseRequestHead parses the request line and the header block from the start of
//     a buffer. It is not incremental: the caller calls it again when more bytes
//     arrive. The head is bounded by Limits, so a re-parse costs at most that much;
//     callers avoid quadratic work on one-byte writes by calling it only once the
//     buffer holds "\r\n\r\n" (FindHeadEnd) or has passed the limit.
//   - ChunkedDecoder decodes a chunked body incrementally, in place.
//
// Every view in a RequestHead points into the caller's buffer and lives as long as
// those bytes do.
//
// Strictness (request smuggling and header abuse, RELIABILITY.md): a request with both
// Content-Length and Transfer-Encoding, two different Content-Length values, a
// Transfer-Encoding other than exactly "chunked", obs-fold (a header line starting with
// SP/HTAB), whitespace between a header name and ':', a bare CR or LF, a NUL or other
// control character (HTAB excepted) in a value, or a non-token character in a name or
// method is an error, never a guess. So are (RFC 9112 3.2) an HTTP/1.1 request without
// exactly one Host or with a Host that is not a valid authority, a Transfer-Encoding in
// HTTP/1.0, and a target that is not origin-form, "*" for OPTIONS, or a simple
// absolute-form "http[s]://authority/path" whose authority equals Host (its
// origin-form part becomes target). A target holds visible ASCII only, without '#'.
// Upgrade and Expect are ignored in HTTP/1.0 (RFC 9110 7.8, 10.1.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace myelin::http {

inline constexpr uint32_t kMaxHeaders = 64;  // hard cap on Limits::max_headers

struct Limits {
  uint32_t max_request_line = 8192;  // method SP target SP version, without CRLF
  uint32_t max_head_bytes = 16384;   // request line + headers + the blank line
  uint32_t max_headers = 64;         // <= kMaxHeaders
  uint64_t max_body_bytes = 1 << 20; // Content-Length or decoded chunked size
};

struct Header {
  std::string_view name;   // as sent (case preserved); compare case-insensitively
  std::string_view value;  // leading and trailing SP/HTAB trimmed
};

enum class Method : uint8_t { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };

struct RequestHead {
  Method method;
  std::string_view method_text;
  std::string_view target;       // origin-form "/path?query" (or "*" for OPTIONS)
  std::string_view path;         // target up to '?'
  std::string_view query;        // after '?', without it; empty when none
  uint8_t version_minor;         // HTTP/1.<minor>: 0 or 1
  Header headers[kMaxHeaders];
  uint32_t header_count;
  uint32_t head_bytes;           // bytes consumed, the final CRLFCRLF included
  // Derived from the headers:
  bool keep_alive;               // 1.1 default true unless "Connection: close"; 1.0 needs keep-alive
  bool chunked;                  // Transfer-Encoding: chunked
  bool has_content_length;
  uint64_t content_length;       // 0 when absent and not chunked
  bool upgrade_websocket;        // "Upgrade: websocket" (any case) and Connection lists "upgrade"
  bool expect_continue;          // "Expect: 100-continue"
  std::string_view host;         // Host header value, empty when absent
  std::string_view authorization;// Authorization header value, empty when absent
};

enum class ParseStatus : uint8_t {
  kDone,      // *head filled; the body (if any) starts at buf + head_bytes
  kNeedMore,  // a valid prefix: call again with more bytes
  kError,     // *error filled; answer it and close the connection
};

struct ParseError {
  uint16_t http_status;  // 400, 413, 414, 431, 501 or 505
  const char* reason;    // static string, for logs and the response body
};

// Index just past the first "\r\n\r\n" in buf[from, len) (searching from max(0, from - 3)
// so a terminator split across calls is found), or 0 when there is none yet. Leading
// empty lines can make it find one before the head's end: ParseRequestHead then says
// kNeedMore, and the search goes on from there.
std::size_t FindHeadEnd(const uint8_t* buf, std::size_t len, std::size_t from) noexcept;

// Parses buf[0, len). With len past limits.max_head_bytes and no complete head, an
// error (431, or 414 when the request line alone is too long). A request line longer
// than max_request_line is 414; more headers than max_headers is 431; a Content-Length
// over max_body_bytes is 413; a version other than HTTP/1.0 or 1.1 is 505; an unknown
// Transfer-Encoding is 501; everything else malformed is 400. Leading empty lines
// (RFC 9112 2.2) are skipped and counted in head_bytes.
ParseStatus ParseRequestHead(const uint8_t* buf, std::size_t len, const Limits& limits,
                             RequestHead* head, ParseError* error) noexcept;

// Case-insensitive header lookup; the first match, or an empty view.
std::string_view FindHeader(const RequestHead& head, std::string_view name) noexcept;

// Decodes a chunked body incrementally. Output may overlap input as long as it does
// not start after it (out <= in): decoding never produces more bytes than it
// consumes, so a caller can keep the decoded body at the front of its buffer and the
// undecoded rest behind it. Chunk extensions are skipped (bounded, 400 past 4 KiB);
// trailers are skipped (bounded by max_trailer_bytes).
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(uint64_t max_body_bytes = 1 << 20, uint32_t max_trailer_bytes = 16384) noexcept;

  enum class Result : uint8_t { kNeedMore, kDone, kError };

  // Decodes in[0, len): writes decoded body bytes to out[0, *out_len) (memmove
  // semantics) and sets *consumed to the input bytes used (all of them on kNeedMore).
  // On kDone, *consumed stops right after the final CRLF: bytes after it belong to
  // the next pipelined request. On kError, *error says why (400, or 413 once the
  // decoded size would pass max_body_bytes).
  Result Decode(const uint8_t* in, std::size_t len, uint8_t* out, std::size_t* consumed,
                std::size_t* out_len, ParseError* error) noexcept;

  uint64_t body_bytes() const noexcept { return body_bytes_; }
  void Reset() noexcept;

 private:
  uint64_t max_body_;
  uint32_t max_trailer_;
  uint64_t body_bytes_ = 0;
  uint64_t chunk_left_ = 0;
  uint32_t line_bytes_ = 0;
  uint8_t state_ = 0;
};

}  // namespace myelin::http
