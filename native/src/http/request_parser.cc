#include "http/request_parser.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace myelin::http {

namespace {

// --- byte classes ----------------------------------------------------------------------

enum : uint8_t {
  kTokenBit = 1,   // tchar (RFC 9110 5.6.2): names and methods
  kValueBit = 2,   // field-vchar, SP or HTAB (obs-text included): header values
  kTargetBit = 4,  // visible ASCII except '#': the request-target
  kHostBit = 8,    // reg-name / IP-literal / port characters: Host and the authority
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit) v |= kTokenBit;
    for (const char* p = "!#$%&'*+-.^_`|~"; *p; ++p) {
      if (c == *p) v |= kTokenBit;
    }
    if (c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7F)) v |= kValueBit;
    if (c >= 0x21 && c <= 0x7E && c != '#') v |= kTargetBit;
    if (alpha || digit) v |= kHostBit;
    for (const char* p = "-._~!$&'()*+,;=%:[]"; *p; ++p) {
      if (c == *p) v |= kHostBit;
    }
    t[static_cast<size_t>(c)] = v;
  }
  return t;
}

constexpr std::array<uint8_t, 256> kClass = MakeClasses();

inline bool Is(uint8_t c, uint8_t bit) noexcept { return (kClass[c] & bit) != 0; }

inline uint8_t Lower(uint8_t c) noexcept {
  return static_cast<uint8_t>(c + (static_cast<unsigned>(c - 'A') < 26u ? 32 : 0));
}

// `lower` is all lowercase ASCII.
inline bool EqualsLower(std::string_view s, std::string_view lower) noexcept {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (Lower(static_cast<uint8_t>(s[i])) != static_cast<uint8_t>(lower[i])) return false;
  }
  return true;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(static_cast<uint8_t>(a[i])) != Lower(static_cast<uint8_t>(b[i]))) return false;
  }
  return true;
}

inline bool IsOws(uint8_t c) noexcept { return c == ' ' || c == '\t'; }

inline std::string_view TrimOws(std::string_view s) noexcept {
  size_t b = 0, e = s.size();
  while (b < e && IsOws(static_cast<uint8_t>(s[b]))) ++b;
  while (e > b && IsOws(static_cast<uint8_t>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Index of the first byte in p[0, n) that may not appear in a header value (a control
// character other than HTAB, or DEL), or n. Values are most of a head's bytes, so this
// is the hot loop; SSE2 is the x86-64 baseline, and the scalar tail (which short
// values always take) is the fallback on other CPUs.
inline size_t ScanValue(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1F);
  const __m128i ktab = _mm_set1_epi8('\t');
  const __m128i kdel = _mm_set1_epi8(0x7F);
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i bad = _mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v);  // v <= 0x1F
    bad = _mm_andnot_si128(_mm_cmpeq_epi8(v, ktab), bad);
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, kdel));
    const int m = _mm_movemask_epi8(bad);
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(m)));
  }
#endif
  while (i < n && Is(p[i], kValueBit)) ++i;
  return i;
}

// Index of the first byte in p[0, n) that may not appear in a request-target (SP,
// controls, DEL, '#', non-ASCII), or n.
inline size_t ScanTarget(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i k20 = _mm_set1_epi8(0x20);
  const __m128i k7e = _mm_set1_epi8(0x7E);
  const __m128i khash = _mm_set1_epi8('#');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i bad = _mm_cmpeq_epi8(_mm_min_epu8(v, k20), v);           // v <= 0x20
    bad = _mm_or_si128(bad, _mm_xor_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, k7e), k7e),
                                          _mm_set1_epi8(-1)));       // v > 0x7E
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, khash));
    const int m = _mm_movemask_epi8(bad);
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(m)));
  }
#endif
  while (i < n && Is(p[i], kTargetBit)) ++i;
  return i;
}

#if defined(__SSE2__)
// Lanes of v holding a byte in [lo, hi] (unsigned).
inline __m128i InRange(__m128i v, uint8_t lo, uint8_t hi) noexcept {
  const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8(static_cast<char>(lo)));
  const __m128i span = _mm_set1_epi8(static_cast<char>(hi - lo));
  return _mm_cmpeq_epi8(_mm_min_epu8(d, span), d);
}
#endif

// Index of the first non-tchar byte in p[0, n), or n. tchar is 0x21-0x7E less the
// delimiters "(),/:;<=>?@[\]{}, which fall in three runs and five singles.
inline size_t ScanToken(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i bad = _mm_xor_si128(InRange(v, 0x21, 0x7E), _mm_set1_epi8(-1));
    bad = _mm_or_si128(bad, InRange(v, '(', ')'));
    bad = _mm_or_si128(bad, InRange(v, ':', '@'));
    bad = _mm_or_si128(bad, InRange(v, '[', ']'));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8(',')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('/')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('{')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('}')));
    const int m = _mm_movemask_epi8(bad);
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(m)));
  }
#endif
  while (i < n && Is(p[i], kTokenBit)) ++i;
  return i;
}

bool IsHostValue(std::string_view s) noexcept {
  for (char c : s) {
    if (!Is(static_cast<uint8_t>(c), kHostBit)) return false;
  }
  return true;
}

bool IsToken(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!Is(static_cast<uint8_t>(c), kTokenBit)) return false;
  }
  return true;
}

// Calls fn(element) for each non-empty, OWS-trimmed element of a comma list (RFC 9110
// 5.6.1: empty elements are allowed and ignored).
template <typename Fn>
void ForEachElement(std::string_view list, Fn fn) noexcept {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    const std::string_view e = TrimOws(list.substr(start, comma - start));
    if (!e.empty()) fn(e);
    start = comma + 1;
  }
}

Method MethodOf(std::string_view m) noexcept {
  switch (m.size()) {
    case 3:
      if (m == "GET") return Method::kGet;
      if (m == "PUT") return Method::kPut;
      break;
    case 4:
      if (m == "HEAD") return Method::kHead;
      if (m == "POST") return Method::kPost;
      break;
    case 5:
      if (m == "PATCH") return Method::kPatch;
      break;
    case 6:
      if (m == "DELETE") return Method::kDelete;
      break;
    case 7:
      if (m == "OPTIONS") return Method::kOptions;
      break;
    default:
      break;
  }
  return Method::kOther;
}

inline ParseStatus Fail(ParseError* error, uint16_t status, const char* reason) noexcept {
  error->http_status = status;
  error->reason = reason;
  return ParseStatus::kError;
}

// Header facts gathered while the lines are read; checked together once the head is
// complete, so that the answer does not depend on header order.
struct Seen {
  bool host = false;
  bool transfer_encoding = false;
  bool te_unsupported = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool upgrade_websocket = false;
  bool expect_continue = false;
};

// Interprets the headers the parser acts on. Returns false with *error set on a value
// that must be refused.
bool ApplyHeader(std::string_view name, std::string_view value, RequestHead* head,
                 Seen* seen, ParseError* error) noexcept {
  switch (name.size()) {
    case 4:
      if (EqualsLower(name, "host")) {
        // RFC 9112 3.2: exactly one Host, with a valid value.
        if (seen->host) {
          Fail(error, 400, "more than one Host header");
          return false;
        }
        if (!IsHostValue(value)) {
          Fail(error, 400, "invalid Host header");
          return false;
        }
        seen->host = true;
        head->host = value;
      }
      break;
    case 6:
      if (EqualsLower(name, "expect")) {
        if (EqualsLower(value, "100-continue")) seen->expect_continue = true;
      }
      break;
    case 7:
      if (EqualsLower(name, "upgrade")) {
        ForEachElement(value, [&](std::string_view e) {
          if (EqualsLower(e, "websocket")) seen->upgrade_websocket = true;
        });
      }
      break;
    case 10:
      if (EqualsLower(name, "connection")) {
        ForEachElement(value, [&](std::string_view e) {
          if (EqualsLower(e, "close")) seen->conn_close = true;
          else if (EqualsLower(e, "keep-alive")) seen->conn_keep_alive = true;
          else if (EqualsLower(e, "upgrade")) seen->conn_upgrade = true;
        });
      }
      break;
    case 13:
      if (EqualsLower(name, "authorization") && head->authorization.empty()) {
        head->authorization = value;
      }
      break;
    case 14:
      if (EqualsLower(name, "content-length")) {
        // 1*DIGIT only: no sign, no list ("5, 5"), no whitespace inside.
        if (value.empty()) {
          Fail(error, 400, "empty Content-Length");
          return false;
        }
        uint64_t n = 0;
        for (char ch : value) {
          const auto c = static_cast<uint8_t>(ch);
          if (c < '0' || c > '9') {
            Fail(error, 400, "invalid Content-Length");
            return false;
          }
          const uint64_t d = c - '0';
          if (n > (UINT64_MAX - d) / 10) {
            Fail(error, 400, "Content-Length overflows");
            return false;
          }
          n = n * 10 + d;
        }
        if (head->has_content_length && head->content_length != n) {
          Fail(error, 400, "conflicting Content-Length headers");
          return false;
        }
        head->has_content_length = true;
        head->content_length = n;
      }
      break;
    case 17:
      if (EqualsLower(name, "transfer-encoding")) {
        // Only a lone "chunked" is framed; any other well-formed coding list is
        // understood but not supported (501); a malformed one is refused (400). A second
        // Transfer-Encoding line extends the list, so it is never a lone "chunked".
        bool well_formed = true;
        int elements = 0;
        size_t start = 0;
        while (start <= value.size()) {
          size_t comma = value.find(',', start);
          if (comma == std::string_view::npos) comma = value.size();
          if (!IsToken(TrimOws(value.substr(start, comma - start)))) well_formed = false;
          ++elements;
          start = comma + 1;
        }
        if (!well_formed) {
          Fail(error, 400, "malformed Transfer-Encoding");
          return false;
        }
        if (seen->transfer_encoding || elements != 1 || !EqualsLower(value, "chunked")) {
          seen->te_unsupported = true;
        }
        seen->transfer_encoding = true;
      }
      break;
    default:
      break;
  }
  return true;
}

// The request-target (RFC 9112 3.2). Fills target, path and query. Origin-form, "*"
// for OPTIONS, or an absolute-form "http[s]://authority/path..." (what a client sends
// to a proxy): its authority goes to *authority and the origin-form part is kept.
bool ParseTarget(std::string_view t, RequestHead* head, std::string_view* authority,
                 ParseError* error) noexcept {
  if (t[0] == '*') {
    if (t.size() != 1 || head->method != Method::kOptions) {
      Fail(error, 400, "'*' target is only for OPTIONS");
      return false;
    }
    head->target = head->path = t;
    head->query = {};
    return true;
  }
  if (t[0] != '/') {
    size_t skip = 0;
    if (t.size() > 7 && EqualsLower(t.substr(0, 7), "http://")) skip = 7;
    else if (t.size() > 8 && EqualsLower(t.substr(0, 8), "https://")) skip = 8;
    if (skip == 0) {
      Fail(error, 400, "request target is not origin-form");
      return false;
    }
    const size_t slash = t.find('/', skip);
    const std::string_view auth =
        t.substr(skip, (slash == std::string_view::npos ? t.size() : slash) - skip);
    // Simple only: a non-empty authority without userinfo, then a path. No query
    // straight after the authority, no empty path.
    if (slash == std::string_view::npos || auth.empty() || !IsHostValue(auth)) {
      Fail(error, 400, "unsupported absolute-form target");
      return false;
    }
    *authority = auth;
    t = t.substr(slash);
  }
  head->target = t;
  const size_t q = t.find('?');
  if (q == std::string_view::npos) {
    head->path = t;
    head->query = {};
  } else {
    head->path = t.substr(0, q);
    head->query = t.substr(q + 1);
  }
  return true;
}

// The request line [0, n), without its CRLF.
bool ParseRequestLine(const uint8_t* p, size_t n, RequestHead* head, std::string_view* authority,
                      ParseError* error) noexcept {
  const auto* s = reinterpret_cast<const char*>(p);
  const size_t m = ScanToken(p, n);
  if (m == 0 || m == n || p[m] != ' ') {
    Fail(error, 400, "invalid method");
    return false;
  }
  head->method_text = std::string_view(s, m);
  head->method = MethodOf(head->method_text);
  const size_t t0 = m + 1;
  const size_t t1 = t0 + ScanTarget(p + t0, n - t0);
  if (t1 == t0 || t1 == n || p[t1] != ' ') {
    Fail(error, 400, "invalid request target");
    return false;
  }
  const size_t v = t1 + 1;
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3).
  if (n - v != 8 || std::memcmp(p + v, "HTTP/", 5) != 0 || p[v + 5] < '0' || p[v + 5] > '9' ||
      p[v + 6] != '.' || p[v + 7] < '0' || p[v + 7] > '9') {
    Fail(error, 400, "invalid HTTP version");
    return false;
  }
  if (p[v + 5] != '1' || p[v + 7] > '1') {
    Fail(error, 505, "HTTP version not supported");
    return false;
  }
  head->version_minor = static_cast<uint8_t>(p[v + 7] - '0');
  return ParseTarget(std::string_view(s + t0, t1 - t0), head, authority, error);
}

}  // namespace

std::size_t FindHeadEnd(const uint8_t* buf, std::size_t len, std::size_t from) noexcept {
  // i is where a candidate terminator starts; each ends in "\n\r\n", so memchr jumps
  // from line end to line end.
  std::size_t i = from >= 3 ? from - 3 : 0;
  while (len >= 4 && i <= len - 4) {
    const void* hit = std::memchr(buf + i + 3, '\n', len - i - 3);
    if (hit == nullptr) return 0;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const uint8_t*>(hit) - buf);
    if (buf[lf - 1] == '\r' && buf[lf - 2] == '\n' && buf[lf - 3] == '\r') return lf + 1;
    i = lf - 2;  // a later terminator ends at lf + 1 or after
  }
  return 0;
}

ParseStatus ParseRequestHead(const uint8_t* buf, std::size_t len, const Limits& limits,
                             RequestHead* head, ParseError* error) noexcept {
  head->method = Method::kOther;
  head->method_text = head->target = head->path = head->query = {};
  head->version_minor = 0;
  head->header_count = 0;
  head->head_bytes = 0;
  head->keep_alive = false;
  head->chunked = false;
  head->has_content_length = false;
  head->content_length = 0;
  head->upgrade_websocket = false;
  head->expect_continue = false;
  head->host = head->authorization = {};

  // Nothing past max_head_bytes is ever read: a head that does not end inside this
  // window is too large whatever follows, so the cost of a parse is bounded.
  const std::size_t win = std::min<std::size_t>(len, limits.max_head_bytes);
  const uint32_t max_headers = std::min(limits.max_headers, kMaxHeaders);
  const auto* s = reinterpret_cast<const char*>(buf);
  std::size_t pos = 0;

  // Leading empty lines (RFC 9112 2.2): CRLF only.
  while (pos < win && buf[pos] == '\r') {
    if (pos + 1 >= win) break;
    if (buf[pos + 1] != '\n') return Fail(error, 400, "bare CR");
    pos += 2;
  }

  // The request line.
  const std::size_t line = pos;
  const std::size_t scan_end =
      std::min<std::size_t>(win, line + static_cast<std::size_t>(limits.max_request_line) + 2);
  const void* hit = line < scan_end ? std::memchr(buf + line, '\n', scan_end - line) : nullptr;
  const std::size_t lf =
      hit ? static_cast<std::size_t>(static_cast<const uint8_t*>(hit) - buf) : scan_end;
  // The method is checked first, on whatever has arrived: a TLS ClientHello or other
  // binary on a plain port is refused at once, not after a timeout, and any prefix
  // that already shows a bad method is refused for the same reason as the whole line.
  // (A CR first is a leading empty line still waiting for its LF.)
  const std::size_t m = line + ScanToken(buf + line, lf - line);
  if (m < lf && (buf[m] != ' ' || m == line) && !(m == line && buf[m] == '\r')) {
    return Fail(error, 400, "invalid method");
  }
  if (hit == nullptr) {
    if (scan_end - line == static_cast<std::size_t>(limits.max_request_line) + 2) {
      return Fail(error, 414, "request line too long");
    }
    if (len <= limits.max_head_bytes) return ParseStatus::kNeedMore;
    if (win - line > limits.max_request_line) return Fail(error, 414, "request line too long");
    return Fail(error, 431, "request head too large");
  }
  if (lf == line || buf[lf - 1] != '\r') return Fail(error, 400, "bare LF");
  std::string_view authority;
  if (!ParseRequestLine(buf + line, lf - 1 - line, head, &authority, error)) {
    return ParseStatus::kError;
  }
  pos = lf + 1;

  // The header lines, each checked as soon as it is complete.
  Seen seen;
  bool complete = false;
  while (pos < win) {
    const uint8_t c = buf[pos];
    if (c == '\r') {
      if (pos + 1 >= win) break;
      if (buf[pos + 1] != '\n') return Fail(error, 400, "bare CR");
      pos += 2;
      head->head_bytes = static_cast<uint32_t>(pos);
      complete = true;
      break;
    }
    if (c == '\n') return Fail(error, 400, "bare LF");
    if (IsOws(c)) return Fail(error, 400, "obs-fold or whitespace before a header name");
    const std::size_t name_end = pos + ScanToken(buf + pos, win - pos);
    if (name_end >= win) break;
    if (name_end == pos || buf[name_end] != ':') {
      return Fail(error, 400, "invalid header name");
    }
    const std::size_t v = name_end + 1;
    const std::size_t e = v + ScanValue(buf + v, win - v);
    if (e >= win) break;
    if (buf[e] != '\r') {
      return Fail(error, 400, buf[e] == '\n' ? "bare LF" : "control character in a header value");
    }
    if (e + 1 >= win) break;
    if (buf[e + 1] != '\n') return Fail(error, 400, "bare CR");
    if (head->header_count >= max_headers) return Fail(error, 431, "too many headers");
    Header& h = head->headers[head->header_count++];
    h.name = std::string_view(s + pos, name_end - pos);
    h.value = TrimOws(std::string_view(s + v, e - v));
    if (!ApplyHeader(h.name, h.value, head, &seen, error)) return ParseStatus::kError;
    pos = e + 2;
  }
  if (!complete) {
    // The head does not end inside the window.
    if (len <= limits.max_head_bytes) return ParseStatus::kNeedMore;
    return Fail(error, 431, "request head too large");
  }

  // Framing (RFC 9112 6): refuse every ambiguity a front proxy might read differently.
  if (seen.transfer_encoding) {
    if (head->has_content_length) {
      return Fail(error, 400, "both Content-Length and Transfer-Encoding");
    }
    if (head->version_minor == 0) {
      return Fail(error, 400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (seen.te_unsupported) return Fail(error, 501, "unsupported Transfer-Encoding");
    head->chunked = true;
  }
  if (head->version_minor == 1 && !seen.host) {
    return Fail(error, 400, "missing Host header");
  }
  // RFC 9112 3.2.2 has the authority of an absolute-form target override Host; a
  // front proxy may route on either, so they must agree.
  if (!authority.empty() && !EqualsIgnoreCase(authority, head->host)) {
    return Fail(error, 400, "absolute-form authority differs from Host");
  }
  if (head->has_content_length && head->content_length > limits.max_body_bytes) {
    return Fail(error, 413, "request body too large");
  }
  if (head->version_minor == 1) {
    head->keep_alive = !seen.conn_close;
    // RFC 9110 7.8 and 10.1.1: Upgrade and 100-continue are ignored in HTTP/1.0.
    head->upgrade_websocket = seen.upgrade_websocket && seen.conn_upgrade;
    head->expect_continue = seen.expect_continue;
  } else {
    head->keep_alive = seen.conn_keep_alive && !seen.conn_close;
  }
  return ParseStatus::kDone;
}

std::string_view FindHeader(const RequestHead& head, std::string_view name) noexcept {
  const uint32_t n = std::min(head.header_count, kMaxHeaders);
  for (uint32_t i = 0; i < n; ++i) {
    if (EqualsIgnoreCase(head.headers[i].name, name)) return head.headers[i].value;
  }
  return {};
}

// --- ChunkedDecoder ---------------------------------------------------------------------

namespace {

// ChunkedDecoder::state_ values. chunk_left_ accumulates the size while it is read;
// line_bytes_ counts the size line (digits and extensions) or the trailer section.
enum State : uint8_t {
  kSize,         // hex digits; line_bytes_ == 0 means none read yet
  kExt,          // after ';': skipped up to CR
  kSizeLf,       // after the size line's CR
  kData,         // chunk_left_ bytes of data
  kDataCr,       // CRLF after the data
  kDataLf,
  kTrailerStart, // start of a trailer line, or the final CRLF
  kTrailerLine,  // inside a trailer line: skipped up to CR
  kTrailerLf,
  kFinalLf,
  kDone,
  kFailed,
};

constexpr uint32_t kMaxSizeLine = 4096;

inline int Hex(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  const uint8_t l = c | 0x20;
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return -1;
}

// A byte allowed inside a chunk extension or a trailer line: field-vchar, SP, HTAB.
inline bool IsLineByte(uint8_t c) noexcept { return (kClass[c] & kValueBit) != 0; }

}  // namespace

ChunkedDecoder::ChunkedDecoder(uint64_t max_body_bytes, uint32_t max_trailer_bytes) noexcept
    : max_body_(max_body_bytes), max_trailer_(max_trailer_bytes) {}

void ChunkedDecoder::Reset() noexcept {
  body_bytes_ = 0;
  chunk_left_ = 0;
  line_bytes_ = 0;
  state_ = kSize;
}

ChunkedDecoder::Result ChunkedDecoder::Decode(const uint8_t* in, std::size_t len, uint8_t* out,
                                              std::size_t* consumed, std::size_t* out_len,
                                              ParseError* error) noexcept {
  std::size_t i = 0;
  std::size_t o = 0;
  auto fail = [&](uint16_t status, const char* reason) {
    state_ = kFailed;
    *consumed = i;
    *out_len = o;
    error->http_status = status;
    error->reason = reason;
    return Result::kError;
  };
  if (state_ == kDone) {
    *consumed = 0;
    *out_len = 0;
    return Result::kDone;
  }
  if (state_ == kFailed) return fail(400, "chunked decoder already failed");

  while (i < len) {
    switch (state_) {
      case kSize: {
        const uint8_t c = in[i];
        const int d = Hex(c);
        if (d >= 0) {
          if (chunk_left_ > (UINT64_MAX >> 4)) return fail(400, "chunk size overflows");
          chunk_left_ = (chunk_left_ << 4) | static_cast<uint64_t>(d);
          if (++line_bytes_ > kMaxSizeLine) return fail(400, "chunk size line too long");
          ++i;
          break;
        }
        if (line_bytes_ == 0) return fail(400, "invalid chunk size");
        // Strict: no whitespace between the size and ';' or CRLF.
        if (c != ';' && c != '\r') return fail(400, "invalid chunk size");
        if (chunk_left_ > max_body_ - body_bytes_) return fail(413, "request body too large");
        state_ = c == ';' ? kExt : kSizeLf;
        ++line_bytes_;
        ++i;
        break;
      }
      case kExt: {
        // Skipped, bounded with the size line; any CR ends it (CR is not allowed in a
        // quoted-string either), so a bare CR or LF cannot hide inside.
        const uint8_t c = in[i];
        if (c == '\r') {
          state_ = kSizeLf;
        } else if (!IsLineByte(c)) {
          return fail(400, "invalid chunk extension");
        }
        if (++line_bytes_ > kMaxSizeLine) return fail(400, "chunk extension too long");
        ++i;
        break;
      }
      case kSizeLf:
        if (in[i] != '\n') return fail(400, "bare CR in chunk size line");
        ++i;
        line_bytes_ = 0;
        state_ = chunk_left_ == 0 ? kTrailerStart : kData;
        break;
      case kData: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<uint64_t>(chunk_left_, len - i));
        // o <= i always (the size line and CRLFs are consumed, not produced), so with
        // out <= in the destination never runs ahead of unread input.
        std::memmove(out + o, in + i, n);
        o += n;
        i += n;
        body_bytes_ += n;
        chunk_left_ -= n;
        if (chunk_left_ == 0) state_ = kDataCr;
        break;
      }
      case kDataCr:
        if (in[i] != '\r') return fail(400, "missing CRLF after chunk data");
        ++i;
        state_ = kDataLf;
        break;
      case kDataLf:
        if (in[i] != '\n') return fail(400, "missing CRLF after chunk data");
        ++i;
        state_ = kSize;
        break;
      case kTrailerStart: {
        const uint8_t c = in[i];
        // The final CRLF is not counted, so an empty trailer section always passes.
        if (c == '\r') {
          state_ = kFinalLf;
          ++i;
          break;
        }
        if (IsOws(c) || !IsLineByte(c)) return fail(400, "invalid trailer line");
        if (++line_bytes_ > max_trailer_) return fail(400, "trailer section too large");
        state_ = kTrailerLine;
        ++i;
        break;
      }
      case kTrailerLine: {
        const uint8_t c = in[i];
        if (c == '\r') {
          state_ = kTrailerLf;
        } else if (!IsLineByte(c)) {
          return fail(400, "invalid trailer line");
        }
        if (++line_bytes_ > max_trailer_) return fail(400, "trailer section too large");
        ++i;
        break;
      }
      case kTrailerLf:
        if (in[i] != '\n') return fail(400, "bare CR in trailer");
        if (++line_bytes_ > max_trailer_) return fail(400, "trailer section too large");
        ++i;
        state_ = kTrailerStart;
        break;
      case kFinalLf:
        if (in[i] != '\n') return fail(400, "bare CR at the end of the chunked body");
        ++i;
        state_ = kDone;
        *consumed = i;
        *out_len = o;
        return Result::kDone;
      default:
        return fail(400, "chunked decoder in an invalid state");
    }
  }
  *consumed = i;
  *out_len = o;
  return Result::kNeedMore;
}

}  // namespace myelin::http
