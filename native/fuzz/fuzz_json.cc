// libFuzzer target for the JSON field extractor. For every input it checks:
//   - on a document the reference validator accepts, in-place (padded) and copied
//     (unpadded, exact-size heap block) parses, the native and fallback kernels,
//     and ExtractBatch (offsets shifted into its buffer) all return kOk and agree;
//   - any rejection carries the validator's status and clears every FieldView;
//   - on kOk every FieldView lies inside the input and has its type's shape: strings
//     sit between quotes, `escaped` is exactly "contains a backslash", and escaped
//     strings unescape without error.
// Any violation traps, which libFuzzer reports as a crash with the input saved.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "json/field_extractor.h"

namespace {

using myelin::FieldExtractor;
using myelin::FieldView;
using myelin::JsonType;
using myelin::Status;

constexpr std::string_view kNames[] = {"subject", "key", "priority", "data", "op", "a", ""};
constexpr size_t kNameCount = sizeof(kNames) / sizeof(kNames[0]);

#define FUZZ_ASSERT(cond) \
  do {                    \
    if (!(cond)) __builtin_trap(); \
  } while (0)

bool SameViews(const FieldView* a, const FieldView* b, uint32_t shift) {
  for (size_t i = 0; i < kNameCount; ++i) {
    if (a[i].type != b[i].type || a[i].length != b[i].length || a[i].escaped != b[i].escaped) {
      return false;
    }
    if (a[i].type != JsonType::kMissing && a[i].offset + shift != b[i].offset) return false;
  }
  return true;
}

void CheckShape(const uint8_t* data, size_t size, const FieldView& v) {
  if (v.type == JsonType::kMissing) {
    FUZZ_ASSERT(v.offset == 0 && v.length == 0 && !v.escaped);
    return;
  }
  FUZZ_ASSERT(v.offset <= size && v.length <= size - v.offset);
  const auto* p = reinterpret_cast<const char*>(data) + v.offset;
  const std::string_view s(p, v.length);
  switch (v.type) {
    case JsonType::kString: {
      FUZZ_ASSERT(v.offset >= 1 && v.offset + v.length < size);
      FUZZ_ASSERT(p[-1] == '"' && p[v.length] == '"');
      const bool has_backslash = s.find('\\') != std::string_view::npos;
      FUZZ_ASSERT(v.escaped == has_backslash);
      std::string text;
      const Status u = myelin::UnescapeJsonString(s, &text);
      FUZZ_ASSERT(u == Status::kOk);
      if (!v.escaped) FUZZ_ASSERT(text == s);
      break;
    }
    case JsonType::kNumber:
      FUZZ_ASSERT(!s.empty() && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')));
      break;
    case JsonType::kBool:
      FUZZ_ASSERT(s == "true" || s == "false");
      break;
    case JsonType::kNull:
      FUZZ_ASSERT(s == "null");
      break;
    case JsonType::kObject:
      FUZZ_ASSERT(s.size() >= 2 && s.front() == '{' && s.back() == '}');
      break;
    case JsonType::kArray:
      FUZZ_ASSERT(s.size() >= 2 && s.front() == '[' && s.back() == ']');
      break;
    default:
      FUZZ_ASSERT(false);
  }
  if (v.type != JsonType::kString) FUZZ_ASSERT(!v.escaped);
}

// An independent recursive-descent check (a second opinion on ValidateJsonObject)
// that also reports how deep the first error sits: 0 outside the root object, 1 in
// its own tokens, 2 and more inside nested containers. Extract may overlook only
// errors at depth >= 2; before the first error everything is valid, so simdjson
// sees the top level exactly up to it. Assumes valid UTF-8.
class Strict {
 public:
  Strict(const uint8_t* p, size_t n) : p_(p), n_(n) {
    if (n_ >= 3 && p_[0] == 0xEF && p_[1] == 0xBB && p_[2] == 0xBF) i_ = 3;
    Ws();
    if (i_ >= n_ || p_[i_] != '{') {
      Fail(0);
      return;
    }
    if (!Object(1)) return;
    Ws();
    if (i_ != n_) Fail(0);
  }
  bool ok() const { return error_depth_ < 0; }
  int error_depth() const { return error_depth_; }

 private:
  bool Fail(int depth) {
    if (error_depth_ < 0) error_depth_ = depth;
    return false;
  }
  void Ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }
  bool Hex4(size_t at, uint32_t* v) {
    if (at + 4 > n_) return false;
    uint32_t r = 0;
    for (size_t k = 0; k < 4; ++k) {
      const uint8_t c = p_[at + k];
      uint32_t d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      r = r * 16 + d;
    }
    *v = r;
    return true;
  }
  bool String(int depth) {
    ++i_;
    for (;;) {
      if (i_ >= n_) return Fail(depth);
      const uint8_t c = p_[i_++];
      if (c == '"') return true;
      if (c < 0x20) return Fail(depth);
      if (c != '\\') continue;
      if (i_ >= n_) return Fail(depth);
      const uint8_t e = p_[i_++];
      if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
          e == 't') {
        continue;
      }
      uint32_t hi, lo;
      if (e != 'u' || !Hex4(i_, &hi)) return Fail(depth);
      i_ += 4;
      if (hi >= 0xDC00 && hi <= 0xDFFF) return Fail(depth);
      if (hi < 0xD800 || hi > 0xDBFF) continue;
      if (i_ + 2 > n_ || p_[i_] != '\\' || p_[i_ + 1] != 'u' || !Hex4(i_ + 2, &lo) ||
          lo < 0xDC00 || lo > 0xDFFF) {
        return Fail(depth);
      }
      i_ += 6;
    }
  }
  bool Digits() {
    const size_t start = i_;
    while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool Number(int depth) {
    if (p_[i_] == '-') ++i_;
    if (i_ < n_ && p_[i_] == '0') {
      ++i_;
    } else if (!Digits()) {
      return Fail(depth);
    }
    if (i_ < n_ && p_[i_] == '.') {
      ++i_;
      if (!Digits()) return Fail(depth);
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      ++i_;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
      if (!Digits()) return Fail(depth);
    }
    return true;
  }
  bool Word(std::string_view w, int depth) {
    if (n_ - i_ < w.size() || std::memcmp(p_ + i_, w.data(), w.size()) != 0) return Fail(depth);
    i_ += w.size();
    return true;
  }
  bool Value(int depth) {
    Ws();
    if (i_ >= n_) return Fail(depth);
    switch (p_[i_]) {
      case '{': return Object(depth + 1);
      case '[': return Array(depth + 1);
      case '"': return String(depth);
      case 't': return Word("true", depth);
      case 'f': return Word("false", depth);
      case 'n': return Word("null", depth);
      default: return Number(depth);
    }
  }
  bool Object(int depth) {
    if (depth > 1024) return Fail(depth);
    ++i_;
    Ws();
    if (i_ < n_ && p_[i_] == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      Ws();
      if (i_ >= n_ || p_[i_] != '"') return Fail(depth);
      if (!String(depth)) return false;
      Ws();
      if (i_ >= n_ || p_[i_] != ':') return Fail(depth);
      ++i_;
      if (!Value(depth)) return false;
      Ws();
      if (i_ >= n_) return Fail(depth);
      const uint8_t c = p_[i_++];
      if (c == '}') return true;
      if (c != ',') return Fail(depth);
    }
  }
  bool Array(int depth) {
    if (depth > 1024) return Fail(depth);
    ++i_;
    Ws();
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
      return true;
    }
    for (;;) {
      if (!Value(depth)) return false;
      Ws();
      if (i_ >= n_) return Fail(depth);
      const uint8_t c = p_[i_++];
      if (c == ']') return true;
      if (c != ',') return Fail(depth);
    }
  }

  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
  int error_depth_ = -1;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One extractor per kernel choice for the whole run, as a worker thread would
  // hold one; reusing them also exercises buffer reuse across documents.
  static FieldExtractor native_ex, fallback_ex;
  static const std::string native = myelin::JsonImplementation();

  // Unpadded: an exact-size block, so ASan sees any read past the end.
  std::unique_ptr<uint8_t[]> exact(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(exact.get(), data, size);
  FieldView a[kNameCount];
  const Status sa = native_ex.Extract(exact.get(), size, size, kNames, kNameCount, a);

  // Padded in place, with padding that looks like more JSON.
  std::unique_ptr<uint8_t[]> padded(new uint8_t[size + myelin::kJsonPadding]);
  if (size) std::memcpy(padded.get(), data, size);
  std::memset(padded.get() + size, '}', myelin::kJsonPadding);
  FieldView b[kNameCount];
  const Status sb = native_ex.Extract(padded.get(), size, size + myelin::kJsonPadding, kNames,
                                      kNameCount, b);

  // The scalar kernels, compared below.
  FUZZ_ASSERT(myelin::SetJsonImplementation("fallback") == Status::kOk);
  FieldView c[kNameCount];
  const Status sc = fallback_ex.Extract(exact.get(), size, size, kNames, kNameCount, c);
  FUZZ_ASSERT(myelin::SetJsonImplementation(native) == Status::kOk);

  // Batch: the document at offset 3, parsed in place with 80 bytes of '{' after it.
  const size_t buf_len = size + 83;
  std::unique_ptr<uint8_t[]> batch(new uint8_t[buf_len]);
  std::memset(batch.get(), '{', buf_len);
  if (size) std::memcpy(batch.get() + 3, data, size);
  const uint32_t off = 3, len = static_cast<uint32_t>(size);
  FieldView d[kNameCount];
  Status sd = Status::kInternal;
  FUZZ_ASSERT(native_ex.ExtractBatch(batch.get(), buf_len, &off, &len, 1, kNames, kNameCount, d,
                                     &sd) == Status::kOk);

  const Status ref = myelin::ValidateJsonObject(data, size);
  // Only malformed input may be let through, and only for a flaw inside a nested
  // container; bad UTF-8, non-objects and truncation are always caught.
  int strict_depth = -1;
  if (ref != Status::kInvalidUtf8) {
    const Strict strict(data, size);
    FUZZ_ASSERT(strict.ok() == (ref == Status::kOk));
    strict_depth = strict.error_depth();
  }
  const bool may_pass = ref == Status::kOk || (ref == Status::kMalformedJson && strict_depth >= 2);
  if (!may_pass) {
    FUZZ_ASSERT(sa != Status::kOk && sb != Status::kOk && sc != Status::kOk &&
                sd != Status::kOk);
  }
  if (ref == Status::kOk) {
    // A valid document: every layout and both kernels accept it and agree.
    FUZZ_ASSERT(sa == Status::kOk && sb == Status::kOk && sc == Status::kOk &&
                sd == Status::kOk);
    FUZZ_ASSERT(SameViews(a, b, 0) && SameViews(a, c, 0) && SameViews(a, d, 3));
  }
  // On an invalid one they may differ in whether they notice: nested containers are
  // only skipped, the two stage-1 scanners tokenize garbage differently, and
  // simdjson's extra balance check runs only when the first padding byte is '}'.
  // But a rejection is always named by the validator, and an acceptance is always
  // well-formed at the top level.
  const std::pair<Status, const FieldView*> outcomes[] = {{sa, a}, {sb, b}, {sc, c}, {sd, d}};
  for (const auto& [s, v] : outcomes) {
    const bool in_batch = v == d;
    if (s != Status::kOk) {
      FUZZ_ASSERT(s == ref);
      for (size_t i = 0; i < kNameCount; ++i) FUZZ_ASSERT(v[i].type == JsonType::kMissing);
    } else {
      for (size_t i = 0; i < kNameCount; ++i) {
        FieldView view = v[i];
        if (in_batch && view.type != JsonType::kMissing) {
          FUZZ_ASSERT(view.offset >= 3);
          view.offset -= 3;
        }
        CheckShape(data, size, view);
      }
    }
  }
  return 0;
}
