#include "json/field_extractor.h"

#include <bit>
#include <cstring>
#include <new>
#include <utility>

#include "simdjson.h"

namespace myelin {

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING,
              "kJsonPadding promises callers that this much slack avoids a copy");

namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

// Names of the implementations simdjson 3.x can report; JsonImplementation returns
// these literals because implementation::name() returns a temporary std::string.
constexpr const char* kImplementationNames[] = {
    "icelake", "haswell", "westmere", "arm64", "ppc64",
    "lsx",     "lasx",    "fallback", "unsupported"};

constexpr uint32_t kMaxDepth = 1024;  // simdjson's DEFAULT_MAX_DEPTH

inline bool IsJsonSpace(uint8_t c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

inline std::string_view TrimRight(std::string_view s) noexcept {
  size_t n = s.size();
  while (n > 0 && IsJsonSpace(static_cast<uint8_t>(s[n - 1]))) --n;
  return std::string_view(s.data(), n);
}

inline int HexValue(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads 4 hex digits at p (caller checked that 4 bytes exist).
inline bool ReadHex4(const char* p, uint32_t* v) noexcept {
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    const int d = HexValue(static_cast<uint8_t>(p[i]));
    if (d < 0) return false;
    r = (r << 4) | static_cast<uint32_t>(d);
  }
  *v = r;
  return true;
}

// Decodes one escape starting at s[i] == '\\'. On success advances *i past it and
// stores the code point (a valid scalar value: pairs joined, lone surrogates
// rejected).
inline bool DecodeEscape(std::string_view s, size_t* i, uint32_t* cp) noexcept {
  const size_t at = *i;
  if (at + 1 >= s.size()) return false;
  switch (s[at + 1]) {
    case '"': *cp = '"'; break;
    case '\\': *cp = '\\'; break;
    case '/': *cp = '/'; break;
    case 'b': *cp = '\b'; break;
    case 'f': *cp = '\f'; break;
    case 'n': *cp = '\n'; break;
    case 'r': *cp = '\r'; break;
    case 't': *cp = '\t'; break;
    case 'u': {
      uint32_t hi;
      if (at + 6 > s.size() || !ReadHex4(s.data() + at + 2, &hi)) return false;
      if (hi >= 0xDC00 && hi <= 0xDFFF) return false;  // low half first: lone
      if (hi >= 0xD800 && hi <= 0xDBFF) {
        uint32_t lo;
        if (at + 12 > s.size() || s[at + 6] != '\\' || s[at + 7] != 'u' ||
            !ReadHex4(s.data() + at + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
          return false;
        }
        *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        *i = at + 12;
        return true;
      }
      *cp = hi;
      *i = at + 6;
      return true;
    }
    default:
      return false;
  }
  *i = at + 2;
  return true;
}

// Escape check for a string body that simdjson's stage 1 already vetted for raw
// control characters, closing quotes and UTF-8; `from` is the first backslash.
bool EscapesValid(std::string_view body, size_t from) noexcept {
  size_t i = from;
  while (i < body.size()) {
    if (body[i] != '\\') {
      ++i;
      continue;
    }
    uint32_t cp;
    if (!DecodeEscape(body, &i, &cp)) return false;
  }
  return true;
}

// Escaped-string check used on every top-level key and string value: memchr keeps
// the common no-escape case at memchr speed.
inline bool StringBodyValid(std::string_view body, bool* escaped) noexcept {
  const void* bs = std::memchr(body.data(), '\\', body.size());
  *escaped = bs != nullptr;
  if (!bs) return true;
  return EscapesValid(body, static_cast<size_t>(static_cast<const char*>(bs) - body.data()));
}

// RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view t) noexcept {
  size_t i = 0;
  const size_t n = t.size();
  auto digit = [&](size_t k) { return k < n && t[k] >= '0' && t[k] <= '9'; };
  if (i < n && t[i] == '-') ++i;
  if (!digit(i)) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == n;
}

// ---------------------------------------------------------------------------------
// The reference validator (error path only).

enum class Utf8Check { kValid, kInvalid, kIncompleteTail };

// Full UTF-8 check (no overlongs, no surrogates, <= U+10FFFF). kIncompleteTail: all
// valid except a sequence cut short by the end of input, starting at *tail.
Utf8Check CheckUtf8(const uint8_t* p, size_t n, size_t* tail) noexcept {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;  // bounds for the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
    } else {
      return Utf8Check::kInvalid;
    }
    for (size_t k = 1; k <= need; ++k) {
      if (i + k >= n) {
        *tail = i;
        return Utf8Check::kIncompleteTail;
      }
      const uint8_t b = p[i + k];
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return Utf8Check::kInvalid;
    }
    i += need + 1;
  }
  return Utf8Check::kValid;
}

// A pushdown automaton for "JSON text whose root is an object", fed one byte at a
// time. Every state it can be in after accepting a byte is a proper prefix of some
// valid document, which is what lets ValidateJsonObject tell truncated from
// malformed. UTF-8 is checked before it runs, so it lets bytes >= 0x80 through
// inside strings and rejects them elsewhere.
class JsonAutomaton {
 public:
  enum class Feed { kOk, kBad, kNotObject };

  Feed Push(uint8_t c) noexcept {
    for (;;) {
      switch (st_) {
        case St::kString:
          if (c == '"') {
            st_ = key_ ? St::kColon : St::kAfterValue;
          } else if (c == '\\') {
            st_ = St::kEscape;
          } else if (c < 0x20) {
            return Feed::kBad;
          }
          return Feed::kOk;
        case St::kEscape:
          switch (c) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
              st_ = St::kString;
              return Feed::kOk;
            case 'u':
              BeginHex(false);
              return Feed::kOk;
            default:
              return Feed::kBad;
          }
        case St::kHex: {
          const int d = HexValue(c);
          if (d < 0) return Feed::kBad;
          hex_ = (hex_ << 4) | static_cast<uint32_t>(d);
          if (--hex_left_ > 0) return Feed::kOk;
          const bool low = hex_ >= 0xDC00 && hex_ <= 0xDFFF;
          if (want_low_) {
            if (!low) return Feed::kBad;
            st_ = St::kString;
          } else if (low) {
            return Feed::kBad;
          } else {
            st_ = (hex_ >= 0xD800 && hex_ <= 0xDBFF) ? St::kLowBackslash : St::kString;
          }
          return Feed::kOk;
        }
        case St::kLowBackslash:
          if (c != '\\') return Feed::kBad;
          st_ = St::kLowU;
          return Feed::kOk;
        case St::kLowU:
          if (c != 'u') return Feed::kBad;
          BeginHex(true);
          return Feed::kOk;
        case St::kLiteral:
          if (c != static_cast<uint8_t>(lit_[lit_pos_])) return Feed::kBad;
          if (lit_[++lit_pos_] == '\0') st_ = St::kAfterValue;
          return Feed::kOk;
        case St::kNumMinus:
          if (c == '0') {
            st_ = St::kNumZero;
          } else if (c >= '1' && c <= '9') {
            st_ = St::kNumInt;
          } else {
            return Feed::kBad;
          }
          return Feed::kOk;
        case St::kNumZero:
        case St::kNumInt:
          if (st_ == St::kNumInt && IsDigit(c)) return Feed::kOk;
          if (c == '.') {
            st_ = St::kNumDot;
            return Feed::kOk;
          }
          if (c == 'e' || c == 'E') {
            st_ = St::kNumE;
            return Feed::kOk;
          }
          st_ = St::kAfterValue;  // the number ended; c belongs to what follows
          continue;
        case St::kNumDot:
          if (!IsDigit(c)) return Feed::kBad;
          st_ = St::kNumFrac;
          return Feed::kOk;
        case St::kNumFrac:
          if (IsDigit(c)) return Feed::kOk;
          if (c == 'e' || c == 'E') {
            st_ = St::kNumE;
            return Feed::kOk;
          }
          st_ = St::kAfterValue;
          continue;
        case St::kNumE:
          if (c == '+' || c == '-') {
            st_ = St::kNumESign;
            return Feed::kOk;
          }
          if (!IsDigit(c)) return Feed::kBad;
          st_ = St::kNumExp;
          return Feed::kOk;
        case St::kNumESign:
          if (!IsDigit(c)) return Feed::kBad;
          st_ = St::kNumExp;
          return Feed::kOk;
        case St::kNumExp:
          if (IsDigit(c)) return Feed::kOk;
          st_ = St::kAfterValue;
          continue;
        default:
          return Structural(c);
      }
    }
  }

  bool Complete() const noexcept { return st_ == St::kDone; }
  bool InPlainString() const noexcept { return st_ == St::kString; }

 private:
  enum class St : uint8_t {
    kStart, kValue, kValueOrClose, kKeyOrClose, kKey, kColon, kAfterValue, kDone,
    kString, kEscape, kHex, kLowBackslash, kLowU, kLiteral,
    kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumE, kNumESign, kNumExp,
  };

  static bool IsDigit(uint8_t c) noexcept { return c >= '0' && c <= '9'; }

  void BeginHex(bool want_low) noexcept {
    st_ = St::kHex;
    hex_ = 0;
    hex_left_ = 4;
    want_low_ = want_low;
  }

  bool PushContainer(bool object) noexcept {
    if (depth_ >= kMaxDepth) return false;
    const uint64_t bit = uint64_t{1} << (depth_ % 64);
    if (object) {
      stack_[depth_ / 64] |= bit;
    } else {
      stack_[depth_ / 64] &= ~bit;
    }
    ++depth_;
    return true;
  }

  bool TopIsObject() const noexcept {
    const uint32_t d = depth_ - 1;
    return (stack_[d / 64] >> (d % 64)) & 1;
  }

  Feed Close(bool object) noexcept {
    if (depth_ == 0 || TopIsObject() != object) return Feed::kBad;
    --depth_;
    st_ = depth_ == 0 ? St::kDone : St::kAfterValue;
    return Feed::kOk;
  }

  Feed StartValue(uint8_t c) noexcept {
    switch (c) {
      case '{':
        if (!PushContainer(true)) return Feed::kBad;
        st_ = St::kKeyOrClose;
        return Feed::kOk;
      case '[':
        if (!PushContainer(false)) return Feed::kBad;
        st_ = St::kValueOrClose;
        return Feed::kOk;
      case '"':
        st_ = St::kString;
        key_ = false;
        return Feed::kOk;
      case '-':
        st_ = St::kNumMinus;
        return Feed::kOk;
      case '0':
        st_ = St::kNumZero;
        return Feed::kOk;
      case 't':
        return BeginLiteral("true");
      case 'f':
        return BeginLiteral("false");
      case 'n':
        return BeginLiteral("null");
      default:
        if (c >= '1' && c <= '9') {
          st_ = St::kNumInt;
          return Feed::kOk;
        }
        return Feed::kBad;
    }
  }

  Feed BeginLiteral(const char* word) noexcept {
    st_ = St::kLiteral;
    lit_ = word;
    lit_pos_ = 1;
    return Feed::kOk;
  }

  Feed Structural(uint8_t c) noexcept {
    if (IsJsonSpace(c)) return Feed::kOk;
    switch (st_) {
      case St::kStart:
        if (c == '{') return StartValue(c);
        if (c == '[' || c == '"' || c == '-' || IsDigit(c) || c == 't' || c == 'f' ||
            c == 'n') {
          return Feed::kNotObject;
        }
        return Feed::kBad;
      case St::kValueOrClose:
        if (c == ']') return Close(false);
        return StartValue(c);
      case St::kValue:
        return StartValue(c);
      case St::kKeyOrClose:
        if (c == '}') return Close(true);
        [[fallthrough]];
      case St::kKey:
        if (c != '"') return Feed::kBad;
        st_ = St::kString;
        key_ = true;
        return Feed::kOk;
      case St::kColon:
        if (c != ':') return Feed::kBad;
        st_ = St::kValue;
        return Feed::kOk;
      case St::kAfterValue:
        if (c == ',') {
          st_ = TopIsObject() ? St::kKey : St::kValue;
          return Feed::kOk;
        }
        if (c == '}') return Close(true);
        if (c == ']') return Close(false);
        return Feed::kBad;
      default:  // kDone: only whitespace may follow the root object
        return Feed::kBad;
    }
  }

  St st_ = St::kStart;
  bool key_ = false;
  bool want_low_ = false;
  uint8_t hex_left_ = 0;
  uint8_t lit_pos_ = 0;
  uint32_t hex_ = 0;
  uint32_t depth_ = 0;
  const char* lit_ = nullptr;
  uint64_t stack_[kMaxDepth / 64] = {};  // bit d: the container at depth d is an object
};

inline bool HasBom(const uint8_t* p, size_t n) noexcept {
  return n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF;
}

// Maps the simdjson errors that are not about the document's text; every other
// error is named by the reference validator.
inline bool ResourceStatus(error_code e, Status* s) noexcept {
  switch (e) {
    case simdjson::MEMALLOC: *s = Status::kOutOfMemory; return true;
    case simdjson::CAPACITY: *s = Status::kInvalidArgument; return true;
    case simdjson::UNSUPPORTED_ARCHITECTURE: *s = Status::kUnsupported; return true;
    default: return false;
  }
}

inline void ResetViews(FieldView* out, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) out[i] = FieldView{0, 0, JsonType::kMissing, false};
}

// The hot path. Returns SUCCESS with out[] filled, or any error code; the caller
// names text errors with ValidateJsonObject. Offsets are relative to buf plus base.
error_code Walk(od::parser& parser, const uint8_t* buf, size_t len, size_t cap, uint32_t base,
                const std::string_view* names, size_t name_count, FieldView* out) noexcept {
  od::document doc;
  error_code e = parser.iterate(simdjson::padded_string_view(buf, len, cap)).get(doc);
  if (e) return e;
  od::object obj;
  if ((e = doc.get_object().get(obj))) return e;
  const char* const origin = reinterpret_cast<const char*>(buf);
  for (auto field_result : obj) {
    od::field field;
    if ((e = std::move(field_result).get(field))) return e;
    const std::string_view key = field.escaped_key();
    bool key_escaped;
    if (!StringBodyValid(key, &key_escaped)) return simdjson::STRING_ERROR;

    uint32_t match = 0;  // bit i: names[i] equals this key
    for (size_t i = 0; i < name_count; ++i) {
      if (names[i].size() == key.size() &&
          std::memcmp(names[i].data(), key.data(), key.size()) == 0) {
        match |= uint32_t{1} << i;
      }
    }

    od::value& value = field.value();
    od::json_type type;
    if ((e = value.type().get(type))) return e;
    FieldView view{0, 0, JsonType::kMissing, false};
    std::string_view span;
    switch (type) {
      case od::json_type::object:
      case od::json_type::array: {
        // Unrequested containers are left for the object iterator to skip.
        if (!match) continue;
        const bool is_object = type == od::json_type::object;
        if ((e = value.raw_json().get(span))) return e;
        span = TrimRight(span);
        // On-Demand's skip counts brackets without matching their kinds; at least
        // make the span we hand out end with the right one.
        if (span.empty() || span.back() != (is_object ? '}' : ']')) return simdjson::TAPE_ERROR;
        view.type = is_object ? JsonType::kObject : JsonType::kArray;
        break;
      }
      case od::json_type::string: {
        const std::string_view token = TrimRight(value.raw_json_token());
        if (token.size() < 2 || token.back() != '"') return simdjson::STRING_ERROR;
        span = std::string_view(token.data() + 1, token.size() - 2);
        if (!StringBodyValid(span, &view.escaped)) return simdjson::STRING_ERROR;
        // Consume the string now: left to the iterator's skip, a string followed by
        // ':' reads as a key, so {"a":"x":1}} would pass as {"a":"x"}.
        od::raw_json_string ignored;
        if ((e = value.get_raw_json_string().get(ignored))) return e;
        view.type = JsonType::kString;
        break;
      }
      case od::json_type::number:
        span = TrimRight(value.raw_json_token());
        if (!IsJsonNumber(span)) return simdjson::NUMBER_ERROR;
        view.type = JsonType::kNumber;
        break;
      case od::json_type::boolean:
        span = TrimRight(value.raw_json_token());
        if (span != "true" && span != "false") return simdjson::T_ATOM_ERROR;
        view.type = JsonType::kBool;
        break;
      case od::json_type::null:
        span = TrimRight(value.raw_json_token());
        if (span != "null") return simdjson::N_ATOM_ERROR;
        view.type = JsonType::kNull;
        break;
      default:
        return simdjson::TAPE_ERROR;
    }
    if (!match) continue;
    view.offset = base + static_cast<uint32_t>(span.data() - origin);
    view.length = static_cast<uint32_t>(span.size());
    while (match) {
      out[std::countr_zero(match)] = view;
      match &= match - 1;
    }
  }
  // Catches a second value after the root object ("{...}}"); other trailing bytes
  // already failed the root-object check in get_object().
  if (!doc.at_end()) return simdjson::TRAILING_CONTENT;
  return simdjson::SUCCESS;
}

inline bool NamesValid(const std::string_view* names, size_t name_count) noexcept {
  return names != nullptr && name_count > 0 && name_count <= kMaxExtractFields;
}

constexpr size_t kMaxInput = 0xFFFFFFFFu;  // FieldView offsets are 32-bit

}  // namespace

// ---------------------------------------------------------------------------------

struct FieldExtractor::Impl {
  od::parser parser;
  // For ValidateValue: a full (DOM) parse validates nested values On-Demand skips.
  // Built on first use; its buffers grow to the largest value seen.
  std::unique_ptr<simdjson::dom::parser> dom;
  // The implementation `parser` was built under; a mismatch with simdjson's active
  // one means SetJsonImplementation ran since, and the parser must be rebuilt.
  const simdjson::implementation* implementation = nullptr;
  // Fallback's stage 1 validates UTF-8 only inside strings; the SIMD kernels check
  // every byte. True when the extra whole-input pass is needed.
  bool utf8_pass = false;
  // Padded copy for inputs without kJsonPadding slack. Grows, never shrinks.
  std::unique_ptr<uint8_t[]> scratch;
  size_t scratch_capacity = 0;
};

FieldExtractor::FieldExtractor() noexcept = default;
FieldExtractor::~FieldExtractor() = default;
FieldExtractor::FieldExtractor(FieldExtractor&&) noexcept = default;
FieldExtractor& FieldExtractor::operator=(FieldExtractor&&) noexcept = default;

Status FieldExtractor::EnsureImpl() noexcept {
  if (impl_) return Status::kOk;
  // nothrow: the parser's own buffers are allocated the same way, so bad_alloc can
  // never escape this noexcept API.
  impl_.reset(new (std::nothrow) Impl());
  return impl_ ? Status::kOk : Status::kOutOfMemory;
}

// data[0, len) copied into the Impl's scratch buffer with SIMDJSON_PADDING zeroed
// bytes after it (simdjson reads past the end; zeroing keeps runs reproducible);
// nullptr when the buffer cannot grow. The scratch grows, never shrinks.
const uint8_t* FieldExtractor::PaddedCopy(Impl& im, const uint8_t* data, size_t len) noexcept {
  const size_t need = len + simdjson::SIMDJSON_PADDING;
  if (need > im.scratch_capacity) {
    size_t grown = im.scratch_capacity * 2;
    if (grown < need) grown = need;
    im.scratch.reset(new (std::nothrow) uint8_t[grown]);
    im.scratch_capacity = im.scratch ? grown : 0;
    if (!im.scratch) return nullptr;
  }
  std::memcpy(im.scratch.get(), data, len);
  std::memset(im.scratch.get() + len, 0, simdjson::SIMDJSON_PADDING);
  return im.scratch.get();
}

Status FieldExtractor::ValidateValue(const uint8_t* data, size_t len) noexcept {
  if (!data && len > 0) return Status::kInvalidArgument;
  if (len == 0) return Status::kTruncatedJson;
  Status st = EnsureImpl();
  if (!Ok(st)) return st;
  Impl& im = *impl_;
  if (!im.dom) {
    im.dom.reset(new (std::nothrow) simdjson::dom::parser());
    if (!im.dom) return Status::kOutOfMemory;
  }
  const uint8_t* padded = PaddedCopy(im, data, len);
  if (!padded) return Status::kOutOfMemory;
  error_code e = im.dom->parse(padded, len, false).error();
  if (e == simdjson::SUCCESS) {
    // The scalar fallback kernels check UTF-8 only inside strings.
    if (simdjson::get_active_implementation()->name() == "fallback" &&
        !simdjson::validate_utf8(reinterpret_cast<const char*>(data), len))
      return Status::kInvalidUtf8;
    return Status::kOk;
  }
  Status s;
  if (ResourceStatus(e, &s)) return s;
  return e == simdjson::UTF8_ERROR ? Status::kInvalidUtf8 : Status::kMalformedJson;
}

Status FieldExtractor::ExtractOne(const uint8_t* data, size_t len, size_t capacity,
                                  uint32_t base, const std::string_view* names,
                                  size_t name_count, FieldView* out) noexcept {
  ResetViews(out, name_count);
  if (len == 0) return Status::kTruncatedJson;
  Impl& im = *impl_;

  const uint8_t* buf = data;
  size_t cap = capacity;
  if (capacity - len < simdjson::SIMDJSON_PADDING) {
    buf = PaddedCopy(im, data, len);
    if (!buf) return Status::kOutOfMemory;
    cap = len + simdjson::SIMDJSON_PADDING;
  }

  const simdjson::implementation* active = simdjson::get_active_implementation();
  const bool rebuilt = active != im.implementation;
  if (rebuilt) im.parser = od::parser();
  error_code e = Walk(im.parser, buf, len, cap, base, names, name_count, out);
  if (rebuilt) {
    // Read after the parse: the first parse resolves simdjson's "detect on first
    // use" placeholder into the real implementation.
    im.implementation = simdjson::get_active_implementation();
    im.utf8_pass = im.implementation->name() == "fallback";
  }
  if (e == simdjson::SUCCESS && im.utf8_pass &&
      !simdjson::validate_utf8(reinterpret_cast<const char*>(buf), len)) {
    e = simdjson::UTF8_ERROR;
  }
  if (e == simdjson::SUCCESS) return Status::kOk;

  ResetViews(out, name_count);
  Status s;
  if (ResourceStatus(e, &s)) return s;
  s = ValidateJsonObject(data, len);
  // simdjson rejected what the reference accepts: only possible through a limit
  // the reference does not model; still a failure, never kOk.
  return s == Status::kOk ? Status::kMalformedJson : s;
}

Status FieldExtractor::Extract(const uint8_t* data, size_t len, size_t capacity,
                               const std::string_view* names, size_t name_count,
                               FieldView* out) noexcept {
  if (!out || !NamesValid(names, name_count)) return Status::kInvalidArgument;
  ResetViews(out, name_count);
  if ((!data && len > 0) || capacity < len || len > kMaxInput) {
    return Status::kInvalidArgument;
  }
  if (Status s = EnsureImpl(); !Ok(s)) return s;
  return ExtractOne(data, len, capacity, 0, names, name_count, out);
}

Status FieldExtractor::ExtractBatch(const uint8_t* buf, size_t buf_len, const uint32_t* offsets,
                                    const uint32_t* lengths, size_t doc_count,
                                    const std::string_view* names, size_t name_count,
                                    FieldView* out, Status* statuses) noexcept {
  if (!NamesValid(names, name_count) || buf_len > kMaxInput || (!buf && buf_len > 0)) {
    return Status::kInvalidArgument;
  }
  if (doc_count == 0) return Status::kOk;
  if (!offsets || !lengths || !out || !statuses) return Status::kInvalidArgument;
  if (Status s = EnsureImpl(); !Ok(s)) return s;
  for (size_t d = 0; d < doc_count; ++d) {
    FieldView* views = out + d * name_count;
    const size_t off = offsets[d];
    const size_t len = lengths[d];
    if (off > buf_len || len > buf_len - off) {
      ResetViews(views, name_count);
      statuses[d] = Status::kInvalidArgument;
      continue;
    }
    statuses[d] = ExtractOne(buf + off, len, buf_len - off, static_cast<uint32_t>(off), names,
                             name_count, views);
  }
  return Status::kOk;
}

// ---------------------------------------------------------------------------------

Status UnescapeJsonString(std::string_view raw, std::string* out) noexcept {
  if (!out) return Status::kInvalidArgument;
  out->clear();
  if (!simdjson::validate_utf8(raw.data(), raw.size())) return Status::kInvalidUtf8;
  Status status = Status::kOk;
  // std::string may throw bad_alloc; this API does not.
  try {
    out->reserve(raw.size());  // unescaping never lengthens: \uXXXX (6 B) -> <= 3 B
    size_t i = 0;
    while (i < raw.size() && Ok(status)) {
      size_t run = i;
      while (run < raw.size()) {
        const uint8_t c = static_cast<uint8_t>(raw[run]);
        if (c == '\\' || c == '"' || c < 0x20) break;
        ++run;
      }
      out->append(raw.data() + i, run - i);
      i = run;
      if (i == raw.size()) break;
      if (raw[i] != '\\') {
        status = Status::kMalformedJson;
        break;
      }
      uint32_t cp;
      if (!DecodeEscape(raw, &i, &cp)) {
        status = Status::kMalformedJson;
        break;
      }
      char utf8[4];
      size_t n;
      if (cp < 0x80) {
        utf8[0] = static_cast<char>(cp);
        n = 1;
      } else if (cp < 0x800) {
        utf8[0] = static_cast<char>(0xC0 | (cp >> 6));
        utf8[1] = static_cast<char>(0x80 | (cp & 0x3F));
        n = 2;
      } else if (cp < 0x10000) {
        utf8[0] = static_cast<char>(0xE0 | (cp >> 12));
        utf8[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        utf8[2] = static_cast<char>(0x80 | (cp & 0x3F));
        n = 3;
      } else {
        utf8[0] = static_cast<char>(0xF0 | (cp >> 18));
        utf8[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        utf8[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        utf8[3] = static_cast<char>(0x80 | (cp & 0x3F));
        n = 4;
      }
      out->append(utf8, n);
    }
  } catch (...) {
    status = Status::kOutOfMemory;
  }
  if (!Ok(status)) out->clear();
  return status;
}

Status ValidateJsonObject(const uint8_t* data, size_t len) noexcept {
  if (!data && len > 0) return Status::kInvalidArgument;
  size_t tail = 0;
  const Utf8Check utf8 = CheckUtf8(data, len, &tail);
  if (utf8 == Utf8Check::kInvalid) return Status::kInvalidUtf8;
  // A multi-byte character cut by the end of input is truncation if the text before
  // it is a valid prefix that ends inside a string; otherwise plain bad UTF-8.
  const bool cut = utf8 == Utf8Check::kIncompleteTail;
  const size_t n = cut ? tail : len;
  JsonAutomaton automaton;
  for (size_t i = HasBom(data, n) ? 3 : 0; i < n; ++i) {
    switch (automaton.Push(data[i])) {
      case JsonAutomaton::Feed::kOk:
        break;
      case JsonAutomaton::Feed::kBad:
        return cut ? Status::kInvalidUtf8 : Status::kMalformedJson;
      case JsonAutomaton::Feed::kNotObject:
        return cut ? Status::kInvalidUtf8 : Status::kNotAnObject;
    }
  }
  if (cut) return automaton.InPlainString() ? Status::kTruncatedJson : Status::kInvalidUtf8;
  return automaton.Complete() ? Status::kOk : Status::kTruncatedJson;
}

// ---------------------------------------------------------------------------------

const char* JsonImplementation() noexcept {
  // name() on simdjson's first-use placeholder detects the CPU and installs the
  // real implementation, so this never reports the placeholder.
  const std::string name = simdjson::get_active_implementation()->name();
  for (const char* known : kImplementationNames) {
    if (name == known) return known;
  }
  return "unknown";
}

Status SetJsonImplementation(std::string_view name) noexcept {
  if (name == "unsupported") return Status::kUnsupported;
  const simdjson::implementation* impl = simdjson::get_available_implementations()[name];
  if (!impl || !impl->supported_by_runtime_system()) return Status::kUnsupported;
  simdjson::get_active_implementation() = impl;
  return Status::kOk;
}

}  // namespace myelin
