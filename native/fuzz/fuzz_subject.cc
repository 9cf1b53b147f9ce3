// libFuzzer target for route/subject.h and route/subject_matcher.h.
//
// The input is split on '\n' (never valid inside a subject) into up to 16 lines.
// Each line is validated as both kinds and checked against a reference validator
// written from the grammar in subject.h, where, as in NATS, '*' and '>' are wildcards
// only as whole tokens; a line is a valid publish subject exactly when it is a valid
// pattern without a wildcard token. Lines that are valid patterns are
// subscribed to a small matcher (4-entry cache, so eviction runs constantly); every
// valid publish line, plus a few subjects derived from each pattern (including decoys
// for tokens like "foo*" that hold '*' or '>' without being a wildcard), is then
// matched cached and uncached and compared with a brute-force matcher, before and after
// unsubscribing half the patterns and then all of them. Any disagreement traps.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "route/subject.h"
#include "route/subject_matcher.h"

namespace {

using myelin::MatchResult;
using myelin::Status;
using myelin::SubjectKind;
using myelin::SubjectMatcher;

#define FUZZ_ASSERT(cond) \
  do {                    \
    if (!(cond)) __builtin_trap(); \
  } while (0)

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Status RefValidate(std::string_view s, SubjectKind kind) {
  if (s.empty()) return Status::kInvalidSubject;
  if (s.size() > myelin::kMaxSubjectBytes) return Status::kSubjectTooLong;
  const std::vector<std::string_view> tokens = Split(s, '.');
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view t = tokens[i];
    if (t.empty()) return Status::kInvalidSubject;
    for (char c : t) {
      if (c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
        return Status::kInvalidSubject;
      }
    }
    // Whole tokens only: "a*" or ">b" is literal, valid for both kinds.
    const bool star = t == "*", tail = t == ">";
    if ((star || tail) && kind == SubjectKind::kPublish) return Status::kInvalidSubject;
    if (tail && i + 1 != tokens.size()) return Status::kInvalidSubject;
  }
  return Status::kOk;
}

bool HasWildcardToken(std::string_view s) {
  for (std::string_view t : Split(s, '.')) {
    if (t == "*" || t == ">") return true;
  }
  return false;
}

bool RefMatch(std::string_view pattern, std::string_view subject) {
  const std::vector<std::string_view> p = Split(pattern, '.'), s = Split(subject, '.');
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return s.size() > i;
    if (i >= s.size()) return false;
    if (p[i] != "*" && p[i] != s[i]) return false;
  }
  return s.size() == p.size();
}

struct Sub {
  std::string pattern;
  uint32_t id;
};

void CheckMatch(SubjectMatcher& m, const std::vector<Sub>& subs, std::string_view subject) {
  std::set<uint32_t> want;
  for (const Sub& s : subs) {
    if (RefMatch(s.pattern, subject)) want.insert(s.id);
  }
  for (int pass = 0; pass < 3; ++pass) {  // miss, hit, trie
    MatchResult r;
    const Status st = pass == 2 ? m.MatchUncached(subject, &r) : m.Match(subject, &r);
    FUZZ_ASSERT(st == Status::kOk);
    FUZZ_ASSERT(r.count == want.size());
    uint32_t i = 0;
    for (uint32_t id : want) FUZZ_ASSERT(r.ids[i++] == id);
  }
}

// Publish subjects a pattern should and should not reach: wildcards filled in with
// literals, ">" given one and two tokens, and a decoy in which each token that holds
// '*' or '>' without being one loses those bytes ("foo*" -> "foo", ">>" -> "w"), which
// a reader taking wildcards by the byte would wrongly match.
void DeriveSubjects(std::string_view pattern, std::vector<std::string>* out) {
  std::string one, two, shorter, decoy;
  const std::vector<std::string_view> tokens = Split(pattern, '.');
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view t = tokens[i];
    const std::string lit = t == "*" ? "w" : t == ">" ? "x" : std::string(t);
    const std::string sep = i ? "." : "";
    one += sep + lit;
    two += sep + (t == ">" ? std::string("x.y") : lit);
    if (i + 1 < tokens.size()) shorter += sep + lit;
    std::string stripped;
    for (char c : lit) {
      if (c != '*' && c != '>') stripped += c;
    }
    decoy += sep + (stripped.empty() ? std::string("w") : stripped);
  }
  if (decoy == one) decoy.clear();  // no such token: nothing to decoy (empty is invalid)
  for (std::string* s : {&one, &two, &shorter, &decoy}) {
    if (myelin::ValidateSubject(*s, SubjectKind::kPublish) == Status::kOk) out->push_back(*s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines = Split(input, '\n');
  if (lines.size() > 16) lines.resize(16);

  SubjectMatcher m(4);
  std::vector<Sub> subs;
  std::vector<std::string> subjects;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const Status pub = myelin::ValidateSubject(line, SubjectKind::kPublish);
    const Status pat = myelin::ValidateSubject(line, SubjectKind::kPattern);
    FUZZ_ASSERT(pub == RefValidate(line, SubjectKind::kPublish));
    FUZZ_ASSERT(pat == RefValidate(line, SubjectKind::kPattern));
    FUZZ_ASSERT(pub != Status::kOk || pat == Status::kOk);  // publish is a subset
    if (pat == Status::kOk) FUZZ_ASSERT((pub == Status::kOk) == !HasWildcardToken(line));

    const uint32_t id = static_cast<uint32_t>(i % 5);  // repeats exercise dedup
    const Status sub = m.Subscribe(line, id);
    if (pat != Status::kOk) {
      FUZZ_ASSERT(sub == pat);
    } else {
      bool dup = false;
      for (const Sub& s : subs) dup = dup || (s.pattern == line && s.id == id);
      FUZZ_ASSERT(sub == (dup ? Status::kInvalidArgument : Status::kOk));
      if (!dup) subs.push_back({std::string(line), id});
      DeriveSubjects(line, &subjects);
    }
    MatchResult r;
    FUZZ_ASSERT(m.Match(line, &r) == pub);
    if (pub == Status::kOk) subjects.emplace_back(line);
  }
  FUZZ_ASSERT(m.SubscriptionCount() == subs.size());
  FUZZ_ASSERT(m.CacheSize() <= 4);

  for (const std::string& s : subjects) CheckMatch(m, subs, s);
  for (size_t i = subs.size(); i-- > subs.size() / 2;) {
    FUZZ_ASSERT(m.Unsubscribe(subs[i].pattern, subs[i].id) == Status::kOk);
    FUZZ_ASSERT(m.Unsubscribe(subs[i].pattern, subs[i].id) == Status::kNotFound);
  }
  subs.resize(subs.size() / 2);
  for (const std::string& s : subjects) CheckMatch(m, subs, s);
  for (const Sub& s : subs) FUZZ_ASSERT(m.Unsubscribe(s.pattern, s.id) == Status::kOk);
  FUZZ_ASSERT(m.PatternCount() == 0 && m.SubscriptionCount() == 0 && m.NodeCount() == 0);
  subs.clear();
  for (const std::string& s : subjects) CheckMatch(m, subs, s);
  return 0;
}
