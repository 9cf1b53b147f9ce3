#include "route/subject.h"

#include <array>
#include <cstdint>

namespace myelin {

namespace {

// Byte classes for the single validation pass. A table keeps the per-byte work to
// one load and one compare, which matters because every cache miss in
// SubjectMatcher::Match validates its subject. '*' and '>' are not a class of their
// own: they are ordinary bytes unless a token is exactly one of them, which the
// token-end check below decides.
enum ByteClass : uint8_t { kLiteral = 0, kDot, kBad };

constexpr std::array<uint8_t, 256> MakeClassTable() {
  std::array<uint8_t, 256> t{};
  t[static_cast<uint8_t>('.')] = kDot;
  for (unsigned char c : {'\0', ' ', '\t', '\r', '\n', '\f', '\v'}) t[c] = kBad;
  return t;
}

constexpr std::array<uint8_t, 256> kClass = MakeClassTable();

}  // namespace

Status ValidateSubject(std::string_view s, SubjectKind kind) noexcept {
  if (s.empty()) return Status::kInvalidSubject;
  if (s.size() > kMaxSubjectBytes) return Status::kSubjectTooLong;
  const std::size_t n = s.size();
  std::size_t token_start = 0;
  // i == n acts as a final virtual '.', so the last token is checked by the same code.
  for (std::size_t i = 0; i <= n; ++i) {
    const uint8_t cls = i == n ? static_cast<uint8_t>(kDot) : kClass[static_cast<uint8_t>(s[i])];
    if (cls == kLiteral) continue;
    if (cls == kBad) return Status::kInvalidSubject;
    const std::size_t len = i - token_start;
    if (len == 0) return Status::kInvalidSubject;
    if (len == 1) {
      const std::string_view token = s.substr(token_start, 1);
      const bool star = IsAnyTokenWildcard(token), tail = IsTailWildcard(token);
      if ((star || tail) && kind == SubjectKind::kPublish) return Status::kInvalidSubject;
      if (tail && i != n) return Status::kInvalidSubject;
    }
    token_start = i + 1;
  }
  return Status::kOk;
}

}  // namespace myelin
