// NATS subjects: '.' separates tokens. In a pattern, the token "*" stands for exactly
// one token and the token ">" (only as the last token) for one or more remaining
// tokens. As in NATS, '*' and '>' are wildcards only as whole tokens: inside a longer
// token ("foo*", "a.*bar", ">x", "a.>>") they are ordinary bytes, valid in publish
// subjects and patterns alike, and such a token matches only itself.
//
// Grammar enforced by ValidateSubject, for both kinds:
//   - 1..kMaxSubjectBytes bytes (longer is kSubjectTooLong, everything else that
//     fails is kInvalidSubject);
//   - no empty token ("a..b", ".a", "a.", ".");
//   - no ASCII whitespace (space, \t, \r, \n, \f, \v) and no NUL anywhere (NATS
//     rejects the first five; \v, and NUL where NATS does not check runes, are
//     myelin's stricter rule);
//   - the token ">" only as the last token;
//   - kPublish accepts no wildcard token ("*" or ">") at all.
// Any other byte (including non-ASCII UTF-8) is part of a literal token. The NATS
// server's sublist test vectors for these rules are restated in test/subjects.test.ts
// and native/tests/route_test.cc.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"

namespace myelin {

enum class SubjectKind { kPublish, kPattern };

inline constexpr std::size_t kMaxSubjectBytes = 1024;

// Pure function of its arguments; safe from any thread.
Status ValidateSubject(std::string_view s, SubjectKind kind) noexcept;

// Walks the '.'-separated tokens of a subject as views into the caller's bytes, which
// must outlive the tokenizer. Allocates nothing. On a validated subject every token
// is non-empty; on an arbitrary string it still terminates and yields the empty
// tokens the string has ("a." gives "a" then ""), and "" gives no token at all.
class SubjectTokenizer {
 public:
  constexpr explicit SubjectTokenizer(std::string_view subject) noexcept
      : rest_(subject), done_(subject.empty()) {}

  // Stores the next token in *token and returns true, or returns false at the end.
  constexpr bool Next(std::string_view* token) noexcept {
    if (done_) return false;
    const std::size_t dot = rest_.find('.');
    if (dot == std::string_view::npos) {
      *token = rest_;
      done_ = true;
    } else {
      *token = rest_.substr(0, dot);
      rest_.remove_prefix(dot + 1);
    }
    return true;
  }

 private:
  std::string_view rest_;
  bool done_;
};

// True for the whole-token wildcards; a longer token holding '*' or '>' is a literal.
constexpr bool IsAnyTokenWildcard(std::string_view token) noexcept {
  return token.size() == 1 && token[0] == '*';
}
constexpr bool IsTailWildcard(std::string_view token) noexcept {
  return token.size() == 1 && token[0] == '>';
}

}  // namespace myelin
