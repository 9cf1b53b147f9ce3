// Unit tests for route/subject.h and route/subject_matcher.h. The randomized tests
// compare the trie and its cache against a brute-force matcher written from the
// grammar in subject.h, with fixed seeds so a failure reproduces.
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "route/subject.h"
#include "route/subject_matcher.h"

using myelin::MatchResult;
using myelin::Status;
using myelin::SubjectKind;
using myelin::SubjectMatcher;
using myelin::SubjectTokenizer;
using myelin::ValidateSubject;

namespace {

std::vector<std::string> Split(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '.') {
      out.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// Brute force over tokens, independent of the trie.
bool RefMatchTokens(const std::vector<std::string>& p, const std::vector<std::string>& s) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return s.size() > i;
    if (i >= s.size()) return false;
    if (p[i] != "*" && p[i] != s[i]) return false;
  }
  return s.size() == p.size();
}

bool RefMatch(std::string_view pattern, std::string_view subject) {
  return RefMatchTokens(Split(pattern), Split(subject));
}

struct RefMatcher {
  struct Sub {
    std::string pattern;
    uint32_t id;
    std::vector<std::string> tokens;
  };
  std::vector<Sub> subs;
  void Add(std::string pattern, uint32_t id) {
    std::vector<std::string> tokens = Split(pattern);
    subs.push_back({std::move(pattern), id, std::move(tokens)});
  }
  bool Has(std::string_view pattern, uint32_t id) const {
    for (const Sub& s : subs) {
      if (s.pattern == pattern && s.id == id) return true;
    }
    return false;
  }
  std::vector<uint32_t> Match(std::string_view subject) const {
    const std::vector<std::string> st = Split(subject);
    std::set<uint32_t> ids;
    for (const Sub& s : subs) {
      if (RefMatchTokens(s.tokens, st)) ids.insert(s.id);
    }
    return {ids.begin(), ids.end()};
  }
};

std::vector<uint32_t> ToVector(const MatchResult& r) {
  return r.count ? std::vector<uint32_t>(r.ids, r.ids + r.count) : std::vector<uint32_t>{};
}

std::vector<uint32_t> MatchIds(SubjectMatcher& m, std::string_view subject, bool cached = true) {
  MatchResult r;
  const Status st = cached ? m.Match(subject, &r) : m.MatchUncached(subject, &r);
  CHECK_EQ(st, Status::kOk);
  return ToVector(r);
}

}  // namespace

TEST(ValidateSubjectTable) {
  struct Case {
    std::string s;
    Status publish;
    Status pattern;
  };
  const Status ok = Status::kOk, bad = Status::kInvalidSubject, longer = Status::kSubjectTooLong;
  const std::vector<Case> cases = {
      {"a", ok, ok},
      {"a.b.c", ok, ok},
      {"orders.created.v1", ok, ok},
      {"\xc3\xbc.\xc3\x9f", ok, ok},  // UTF-8 bytes are literal
      {"a-b_c:d/e", ok, ok},
      {"", bad, bad},
      {".", bad, bad},
      {"a..b", bad, bad},
      {".a", bad, bad},
      {"a.", bad, bad},
      {"..", bad, bad},
      {"*", bad, ok},
      {">", bad, ok},
      {"a.*", bad, ok},
      {"a.>", bad, ok},
      {"*.*", bad, ok},
      {"a.*.c.>", bad, ok},
      {"*.>", bad, ok},
      {"a.>.b", bad, bad},
      {">.a", bad, bad},
      {">.>", bad, bad},
      // '*' and '>' inside a longer token are literal bytes, for both kinds.
      {"a.b*", ok, ok},
      {"a.*b", ok, ok},
      {"**", ok, ok},
      {">b", ok, ok},
      {"a.>b", ok, ok},
      {"a.b>", ok, ok},
      {">>", ok, ok},
      {"*>", ok, ok},
      {"a.>>.b", ok, ok},
      {"a.*.>>", bad, ok},
      {">>.>", bad, ok},
      {"*b.*", bad, ok},
      {">b.>.c", bad, bad},
      {".*", bad, bad},
      {"*.", bad, bad},
      {"a.*b..c", bad, bad},
      {"a*\tb", bad, bad},
      {"a b", bad, bad},
      {" a", bad, bad},
      {"a ", bad, bad},
      {"a\tb", bad, bad},
      {"a\rb", bad, bad},
      {"a\nb", bad, bad},
      {"a\fb", bad, bad},
      {"a\vb", bad, bad},
      {std::string("a\0b", 3), bad, bad},
      {std::string("a.\0", 3), bad, bad},
      {std::string(1, '\0'), bad, bad},
      {std::string(1024, 'x'), ok, ok},
      {std::string(1025, 'x'), longer, longer},
      {std::string(64 * 1024, 'x'), longer, longer},
      {std::string(2000, ' '), longer, longer},  // length is judged first
      {std::string(1022, 'x') + ".>", bad, ok},
      {std::string(500, 'x') + ".." + std::string(522, 'x'), bad, bad},
  };
  for (const Case& c : cases) {
    CHECK_EQ(ValidateSubject(c.s, SubjectKind::kPublish), c.publish);
    CHECK_EQ(ValidateSubject(c.s, SubjectKind::kPattern), c.pattern);
    if (ValidateSubject(c.s, SubjectKind::kPublish) != c.publish ||
        ValidateSubject(c.s, SubjectKind::kPattern) != c.pattern) {
      std::fprintf(stderr, "    case (%zu bytes) \"%.40s\"\n", c.s.size(), c.s.c_str());
    }
  }
  CHECK_EQ(myelin::kMaxSubjectBytes, size_t{1024});
}

TEST(ValidateMaxTokens) {
  // 512 one-byte tokens: 1023 bytes, the most tokens a valid subject can have.
  std::string s = "a";
  for (int i = 1; i < 512; ++i) s += ".a";
  CHECK_EQ(s.size(), size_t{1023});
  CHECK_EQ(ValidateSubject(s, SubjectKind::kPublish), Status::kOk);
  s += ".b";
  CHECK_EQ(ValidateSubject(s, SubjectKind::kPublish), Status::kSubjectTooLong);
}

TEST(TokenizerYieldsViews) {
  auto tokens = [](std::string_view s) {
    std::vector<std::string> out;
    SubjectTokenizer t(s);
    std::string_view tok;
    while (t.Next(&tok)) out.emplace_back(tok);
    return out;
  };
  CHECK(tokens("a.bb.ccc") == (std::vector<std::string>{"a", "bb", "ccc"}));
  CHECK(tokens("solo") == (std::vector<std::string>{"solo"}));
  CHECK(tokens("").empty());
  CHECK(tokens("a.") == (std::vector<std::string>{"a", ""}));
  CHECK(tokens(".") == (std::vector<std::string>{"", ""}));
  const std::string_view src = "x.yz";
  SubjectTokenizer t(src);
  std::string_view tok;
  CHECK(t.Next(&tok));
  CHECK(t.Next(&tok));
  CHECK_EQ(static_cast<const void*>(tok.data()), static_cast<const void*>(src.data() + 2));
  CHECK(!t.Next(&tok));
  CHECK(!t.Next(&tok));
  static_assert(myelin::IsTailWildcard(">") && !myelin::IsTailWildcard(">>"));
  static_assert(myelin::IsAnyTokenWildcard("*") && !myelin::IsAnyTokenWildcard("a"));
}

TEST(WildcardTable) {
  struct Case {
    const char* pattern;
    const char* subject;
    bool match;
  };
  const std::vector<Case> cases = {
      {"a", "a", true},
      {"a", "b", false},
      {"a", "a.b", false},
      {"a.b", "a", false},
      {"a.*", "a", false},
      {"a.*", "a.b", true},
      {"a.*", "a.b.c", false},
      {"a.*", "b.a", false},
      {"a.>", "a", false},
      {"a.>", "a.b", true},
      {"a.>", "a.b.c", true},
      {"a.>", "b.c", false},
      {"*.*", "a", false},
      {"*.*", "a.b", true},
      {"*.*", "a.b.c", false},
      {"*", "a", true},
      {"*", "a.b", false},
      {">", "a", true},
      {">", "a.b.c.d", true},
      {"*.>", "a", false},
      {"*.>", "a.b", true},
      {"a.*.c.>", "a.b.c.d", true},
      {"a.*.c.>", "a.x.c.d.e.f", true},
      {"a.*.c.>", "a.b.c", false},
      {"a.*.c.>", "a.b.x.d", false},
      {"a.*.c.>", "b.b.c.d", false},
      {"a.*.c", "a.b.c", true},
      {"a.*.c", "a.c", false},
      {"*.b.*", "a.b.c", true},
      {"*.b.*", "a.c.c", false},
      {"orders.created", "orders.created", true},
      {"orders.created", "orders.create", false},
      {"orders.created", "orders.createdd", false},
  };
  for (const Case& c : cases) {
    CHECK_EQ(RefMatch(c.pattern, c.subject), c.match);
    SubjectMatcher m;
    CHECK_EQ(m.Subscribe(c.pattern, 42), Status::kOk);
    const std::vector<uint32_t> want = c.match ? std::vector<uint32_t>{42} : std::vector<uint32_t>{};
    const bool got_cached = MatchIds(m, c.subject) == want;
    const bool got_again = MatchIds(m, c.subject) == want;  // now from the cache
    const bool got_trie = MatchIds(m, c.subject, false) == want;
    CHECK(got_cached && got_again && got_trie);
    if (!(got_cached && got_again && got_trie)) {
      std::fprintf(stderr, "    pattern %s subject %s\n", c.pattern, c.subject);
    }
  }
}

// The NATS server's own subject vectors (nats-io/nats-server server/sublist_test.go:
// TestSublistValidLiteralSubjects, TestSublistValidlSubjects, TestSublistMatchLiterals,
// TestSublist{Insert,Remove}WithWildcardsAsLiterals), restated: a publish subject is a
// NATS literal subject, a pattern a NATS subject, and matchLiteral(subject, pattern)
// is "a subscription to pattern receives subject". test/subjects.test.ts holds the
// same facts for the JS API and the bus.
TEST(NatsSublistVectors) {
  const std::vector<std::pair<const char*, bool>> publish = {
      {"foo", true},      {".foo", false},     {"foo.", false},     {"foo..bar", false},
      {"foo.bar.*", false}, {"foo.bar.>", false}, {"*", false},      {">", false},
      {"foo*", true},     {"foo**", true},     {"foo.**", true},    {"foo*bar", true},
      {"foo.*bar", true}, {"foo*.bar", true},  {"*bar", true},      {"foo>", true},
      {"foo>>", true},    {"foo.>>", true},    {"foo>bar", true},   {"foo.>bar", true},
      {"foo>.bar", true}, {">bar", true},
  };
  const std::vector<std::pair<const char*, bool>> pattern = {
      {".", false},       {".foo", false},     {"foo.", false},     {"foo..bar", false},
      {">.bar", false},   {"foo.>.bar", false}, {"foo", true},      {"foo.bar.*", true},
      {"foo.bar.>", true}, {"*", true},        {">", true},         {"foo*", true},
      {"foo**", true},    {"foo.**", true},    {"foo*bar", true},   {"foo.*bar", true},
      {"foo*.bar", true}, {"*bar", true},      {"foo>", true},      {"foo.>>", true},
      {"foo>bar", true},  {"foo.>bar", true},  {"foo>.bar", true},  {">bar", true},
  };
  struct Match {
    const char* pattern;
    const char* subject;
    bool match;
  };
  const std::vector<Match> match = {
      {"foo", "foo", true},
      {"bar", "foo", false},
      {"*", "foo", true},
      {">", "foo", true},
      {">", "foo.bar", true},
      {"foo.>", "foo.bar", true},
      {"bar.>", "foo.bar", false},
      {"stats.>", "stats.test.22", true},
      {"stats.*.*", "stats.test.22", true},
      {"foo", "foo.bar", false},
      {"stats.test.foos", "stats.test.foos", true},
      {"stats.test.foo", "stats.test.foos", false},
      {"stats.test.*", "stats.test", false},
      {"stats.*", "stats.test.foos", false},
      {"stats.*.*.foos", "stats.test.foos", false},
      {"*bar", "*bar", true},
      {"foo*", "foo*", true},
      {"foo*bar", "foo*bar", true},
      {"foo.***.bar", "foo.***.bar", true},
      {">bar", ">bar", true},
      {"foo>", "foo>", true},
      {"foo>bar", "foo>bar", true},
      {"foo.>>>.bar", "foo.>>>.bar", true},
  };
  const char* const literal_patterns[] = {"foo.*-", "foo.>-"};
  CHECK_EQ(publish.size() + pattern.size() + match.size() + std::size(literal_patterns), size_t{71});

  int wrong = 0;
  auto agree = [&](bool ok, const char* what, const char* a, const char* b) {
    if (ok) return;
    ++wrong;
    std::fprintf(stderr, "    NATS disagrees: %s \"%s\" \"%s\"\n", what, a, b);
  };
  for (const auto& [s, valid] : publish) {
    agree((ValidateSubject(s, SubjectKind::kPublish) == Status::kOk) == valid, "publish", s, "");
  }
  for (const auto& [p, valid] : pattern) {
    agree((ValidateSubject(p, SubjectKind::kPattern) == Status::kOk) == valid, "pattern", p, "");
  }
  for (const Match& c : match) {
    agree(RefMatch(c.pattern, c.subject) == c.match, "reference match", c.pattern, c.subject);
    for (size_t cache : {size_t{0}, size_t{4}}) {
      SubjectMatcher m(cache);
      CHECK_EQ(m.Subscribe(c.pattern, 9), Status::kOk);
      const std::vector<uint32_t> want = c.match ? std::vector<uint32_t>{9} : std::vector<uint32_t>{};
      agree(MatchIds(m, c.subject) == want && MatchIds(m, c.subject) == want &&
                MatchIds(m, c.subject, false) == want,
            "match", c.pattern, c.subject);
    }
  }
  for (const char* p : literal_patterns) {
    SubjectMatcher m;
    CHECK_EQ(m.Subscribe(p, 1), Status::kOk);
    agree(MatchIds(m, "foo.bar").empty() && MatchIds(m, p) == std::vector<uint32_t>{1},
          "literal pattern", p, "foo.bar");
    CHECK_EQ(m.Unsubscribe("foo.bar", 1), Status::kNotFound);
    CHECK_EQ(m.SubscriptionCount(), size_t{1});
    CHECK_EQ(m.Unsubscribe(p, 1), Status::kOk);
    CHECK_EQ(m.SubscriptionCount(), size_t{0});
    CHECK_EQ(m.NodeCount(), size_t{0});
  }
  CHECK_EQ(wrong, 0);
}

TEST(MatchRejectsBadSubjects) {
  SubjectMatcher m;
  CHECK_EQ(m.Subscribe(">", 1), Status::kOk);
  MatchResult r;
  for (bool cached : {true, false}) {
    auto match = [&](std::string_view s) { return cached ? m.Match(s, &r) : m.MatchUncached(s, &r); };
    // A wildcard cannot be published, even though ">" would match it as a literal.
    CHECK_EQ(match("*"), Status::kInvalidSubject);
    CHECK_EQ(match(">"), Status::kInvalidSubject);
    CHECK_EQ(match("a.*"), Status::kInvalidSubject);
    CHECK_EQ(match("a.>"), Status::kInvalidSubject);
    CHECK_EQ(match(""), Status::kInvalidSubject);
    CHECK_EQ(match("a..b"), Status::kInvalidSubject);
    CHECK_EQ(match("a b"), Status::kInvalidSubject);
    CHECK_EQ(match(std::string_view("a\0b", 3)), Status::kInvalidSubject);
    CHECK_EQ(match(std::string(1025, 'a')), Status::kSubjectTooLong);
    CHECK_EQ(match(std::string(1024, 'a')), Status::kOk);
    CHECK_EQ(r.count, 1u);
    CHECK_EQ(cached ? m.Match("a", nullptr) : m.MatchUncached("a", nullptr),
             Status::kInvalidArgument);
  }
  // Failed matches are not cached: only the 1024-byte subject is.
  CHECK_EQ(m.CacheSize(), size_t{1});
}

TEST(SubscribeRejectsBadPatterns) {
  SubjectMatcher m;
  CHECK_EQ(m.Subscribe("", 1), Status::kInvalidSubject);
  CHECK_EQ(m.Subscribe("a.>.b", 1), Status::kInvalidSubject);
  CHECK_EQ(m.Subscribe(">.b", 1), Status::kInvalidSubject);
  CHECK_EQ(m.Subscribe(std::string(1025, 'a'), 1), Status::kSubjectTooLong);
  CHECK_EQ(m.Unsubscribe("a..b", 1), Status::kInvalidSubject);
  CHECK_EQ(m.Unsubscribe(std::string(4096, 'a'), 1), Status::kSubjectTooLong);
  CHECK_EQ(m.PatternCount(), size_t{0});
  CHECK_EQ(m.NodeCount(), size_t{0});
}

TEST(DuplicateSubscribe) {
  SubjectMatcher m;
  CHECK_EQ(m.Subscribe("a.*", 7), Status::kOk);
  CHECK_EQ(m.Subscribe("a.*", 7), Status::kInvalidArgument);
  CHECK_EQ(m.SubscriptionCount(), size_t{1});
  CHECK_EQ(m.Subscribe("a.*", 8), Status::kOk);  // another id, same pattern
  CHECK_EQ(m.Subscribe("a.>", 7), Status::kOk);  // same id, another pattern
  CHECK_EQ(m.Subscribe("a.b", 7), Status::kOk);
  CHECK_EQ(m.Subscribe("a.>", 7), Status::kInvalidArgument);
  CHECK_EQ(m.PatternCount(), size_t{3});
  CHECK_EQ(m.SubscriptionCount(), size_t{4});
  // id 7 reaches a.b three ways and is reported once.
  CHECK(MatchIds(m, "a.b") == (std::vector<uint32_t>{7, 8}));
  CHECK(MatchIds(m, "a.b", false) == (std::vector<uint32_t>{7, 8}));
  CHECK(MatchIds(m, "a.b.c") == (std::vector<uint32_t>{7}));
  // Extreme ids are ordinary values.
  CHECK_EQ(m.Subscribe("z", 0), Status::kOk);
  CHECK_EQ(m.Subscribe("z", UINT32_MAX), Status::kOk);
  CHECK(MatchIds(m, "z") == (std::vector<uint32_t>{0, UINT32_MAX}));
}

TEST(UnsubscribeUnknownAndPrune) {
  SubjectMatcher m;
  CHECK_EQ(m.Unsubscribe("a", 1), Status::kNotFound);  // empty matcher
  CHECK_EQ(m.Subscribe("a.b.c", 1), Status::kOk);
  CHECK_EQ(m.Subscribe("a.*.c", 2), Status::kOk);
  CHECK_EQ(m.Subscribe("a.>", 3), Status::kOk);
  const size_t nodes = m.NodeCount();
  CHECK_EQ(nodes, size_t{5});  // a, a.b, a.b.c, a.*, a.*.c
  CHECK_EQ(m.Unsubscribe("a.b.c", 2), Status::kNotFound);  // wrong id
  CHECK_EQ(m.Unsubscribe("a.b", 1), Status::kNotFound);    // prefix of a pattern
  CHECK_EQ(m.Unsubscribe("a.b.c.d", 1), Status::kNotFound);
  CHECK_EQ(m.Unsubscribe("a.*", 3), Status::kNotFound);    // "*" is not ">"
  CHECK_EQ(m.Unsubscribe("a.b.>", 3), Status::kNotFound);
  CHECK_EQ(m.Unsubscribe("*.b.c", 1), Status::kNotFound);
  CHECK_EQ(m.NodeCount(), nodes);  // failed lookups leave no nodes behind
  CHECK_EQ(m.SubscriptionCount(), size_t{3});

  CHECK_EQ(m.Unsubscribe("a.b.c", 1), Status::kOk);
  CHECK_EQ(m.Unsubscribe("a.b.c", 1), Status::kNotFound);
  CHECK_EQ(m.NodeCount(), size_t{3});  // a.b and a.b.c pruned
  CHECK_EQ(m.Unsubscribe("a.*.c", 2), Status::kOk);
  CHECK_EQ(m.NodeCount(), size_t{1});  // only "a", holding a.> ids
  CHECK_EQ(m.Unsubscribe("a.>", 3), Status::kOk);
  CHECK_EQ(m.NodeCount(), size_t{0});
  CHECK_EQ(m.PatternCount(), size_t{0});
  CHECK_EQ(m.SubscriptionCount(), size_t{0});
  CHECK(MatchIds(m, "a.b.c").empty());

  // A failed duplicate Subscribe must not leave nodes either.
  CHECK_EQ(m.Subscribe("x.y", 1), Status::kOk);
  CHECK_EQ(m.Subscribe("x.y", 1), Status::kInvalidArgument);
  CHECK_EQ(m.NodeCount(), size_t{2});
}

TEST(ManySiblingsGrowAndPrune) {
  // Exercises child-table growth and backward-shift deletion under one parent.
  SubjectMatcher m;
  for (uint32_t i = 0; i < 5000; ++i) {
    CHECK_EQ(m.Subscribe("p." + std::to_string(i), i), Status::kOk);
  }
  CHECK_EQ(m.NodeCount(), size_t{5001});
  for (uint32_t i = 0; i < 5000; i += 2) CHECK_EQ(m.Unsubscribe("p." + std::to_string(i), i), Status::kOk);
  bool all = true;
  for (uint32_t i = 0; i < 5000; ++i) {
    const std::vector<uint32_t> got = MatchIds(m, "p." + std::to_string(i), false);
    all = all && (i % 2 ? got == std::vector<uint32_t>{i} : got.empty());
  }
  CHECK(all);
  for (uint32_t i = 1; i < 5000; i += 2) CHECK_EQ(m.Unsubscribe("p." + std::to_string(i), i), Status::kOk);
  CHECK_EQ(m.NodeCount(), size_t{0});
}

TEST(CacheInvalidation) {
  SubjectMatcher m;
  CHECK(MatchIds(m, "a.b").empty());
  CHECK_EQ(m.CacheSize(), size_t{1});  // empty results are cached too
  CHECK_EQ(m.Subscribe("a.*", 7), Status::kOk);
  CHECK(MatchIds(m, "a.b") == (std::vector<uint32_t>{7}));
  CHECK_EQ(m.Subscribe("a.b", 3), Status::kOk);
  CHECK(MatchIds(m, "a.b") == (std::vector<uint32_t>{3, 7}));
  CHECK_EQ(m.Subscribe("x", 1), Status::kOk);  // unrelated change
  CHECK(MatchIds(m, "a.b") == (std::vector<uint32_t>{3, 7}));
  CHECK_EQ(m.Unsubscribe("a.*", 7), Status::kOk);
  CHECK(MatchIds(m, "a.b") == (std::vector<uint32_t>{3}));
  CHECK_EQ(m.Unsubscribe("a.b", 3), Status::kOk);
  CHECK(MatchIds(m, "a.b").empty());
  CHECK_EQ(m.CacheSize(), size_t{1});

  // A stale entry whose new result no longer fits its block is reallocated.
  std::vector<uint32_t> want;
  for (uint32_t i = 0; i < 300; ++i) {
    CHECK_EQ(m.Subscribe("a.>", i), Status::kOk);
    want.push_back(i);
  }
  CHECK(MatchIds(m, "a.b") == want);
  CHECK(MatchIds(m, "a.b") == want);

  // A failed Subscribe/Unsubscribe changes nothing, so the cached result stands.
  CHECK_EQ(m.Subscribe("a.>", 5), Status::kInvalidArgument);
  CHECK_EQ(m.Unsubscribe("q", 5), Status::kNotFound);
  CHECK(MatchIds(m, "a.b") == want);

  m.ClearCache();
  CHECK_EQ(m.CacheSize(), size_t{0});
  CHECK(MatchIds(m, "a.b") == want);
  CHECK_EQ(m.CacheSize(), size_t{1});
}

TEST(MatchUncachedLeavesCacheAlone) {
  SubjectMatcher m;
  CHECK_EQ(m.Subscribe("a.>", 1), Status::kOk);
  CHECK(MatchIds(m, "a.b", false) == (std::vector<uint32_t>{1}));
  CHECK_EQ(m.CacheSize(), size_t{0});
  SubjectMatcher off(0);
  CHECK_EQ(off.CacheCapacity(), size_t{0});
  CHECK_EQ(off.Subscribe("a.>", 1), Status::kOk);
  CHECK(MatchIds(off, "a.b") == (std::vector<uint32_t>{1}));
  CHECK_EQ(off.CacheSize(), size_t{0});
  SubjectMatcher huge(SIZE_MAX);
  CHECK_EQ(huge.CacheCapacity(), SubjectMatcher::kMaxCacheEntries);
  CHECK_EQ(SubjectMatcher().CacheCapacity(), size_t{65536});
}

TEST(CacheEvictionAtBound) {
  for (size_t limit : {size_t{1}, size_t{2}, size_t{7}, size_t{64}}) {
    SubjectMatcher m(limit);
    RefMatcher ref;
    for (uint32_t i = 0; i < 50; ++i) {
      const std::string p = "s." + std::to_string(i % 10) + (i % 3 ? ".*" : ".>");
      if (Ok(m.Subscribe(p, i))) ref.Add(p, i);
    }
    std::mt19937 rng(static_cast<uint32_t>(limit));
    bool agree = true, bounded = true;
    for (int n = 0; n < 4000; ++n) {
      // Mostly a hot set smaller than the cache, sometimes a cold subject.
      const uint32_t k = rng() % 8 ? rng() % 4 : rng() % 500;
      const std::string s = "s." + std::to_string(k % 10) + "." + std::to_string(k) +
                            (k % 2 ? ".x" : "");
      agree = agree && MatchIds(m, s) == ref.Match(s);
      bounded = bounded && m.CacheSize() <= limit;
      if (n % 997 == 0) {  // churn: stale entries must be recomputed or evicted first
        const std::string p = "s." + std::to_string(n % 10) + ".>";
        const uint32_t id = 1000 + static_cast<uint32_t>(n);
        CHECK_EQ(m.Subscribe(p, id), Status::kOk);
        ref.Add(p, id);
      }
    }
    CHECK(agree);
    CHECK(bounded);
    CHECK_EQ(m.CacheSize(), limit);
  }
}

TEST(CacheKeepsHotEntriesAndCounts) {
  SubjectMatcher m(64);
  CHECK_EQ(m.Subscribe("hot.*", 1), Status::kOk);
  const std::string hot[] = {"hot.a", "hot.b", "hot.c", "hot.d"};
  for (int i = 0; i < 4000; ++i) {
    CHECK(MatchIds(m, hot[i % 4]) == (std::vector<uint32_t>{1}));
    CHECK(MatchIds(m, "cold." + std::to_string(i)).empty());  // each seen once
  }
  // CLOCK: a one-off subject is evicted before any entry that has been hit, so the
  // hot set misses only on first sight even though 4000 cold subjects went through.
  const SubjectMatcher::CacheStats st = m.GetCacheStats();
  CHECK_EQ(st.hits, uint64_t{4000 - 4});
  CHECK_EQ(st.misses, uint64_t{4000 + 4});
  CHECK_EQ(st.evictions, uint64_t{4000 + 4 - 64});
  CHECK_EQ(m.CacheSize(), size_t{64});
  // A stale entry counts as a miss when it is recomputed.
  CHECK_EQ(m.Subscribe("hot.a", 2), Status::kOk);
  CHECK(MatchIds(m, "hot.a") == (std::vector<uint32_t>{1, 2}));
  CHECK_EQ(m.GetCacheStats().misses, st.misses + 1);
  CHECK(MatchIds(m, "hot.a") == (std::vector<uint32_t>{1, 2}));
  CHECK_EQ(m.GetCacheStats().hits, st.hits + 1);
}

TEST(TenThousandSubscribersOnOneSubject) {
  SubjectMatcher m;
  std::vector<uint32_t> ids(10000);
  for (uint32_t i = 0; i < 10000; ++i) ids[i] = i;
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);
  for (uint32_t id : ids) CHECK_EQ(m.Subscribe("orders.created", id), Status::kOk);
  CHECK_EQ(m.PatternCount(), size_t{1});
  CHECK_EQ(m.SubscriptionCount(), size_t{10000});
  std::vector<uint32_t> want(10000);
  for (uint32_t i = 0; i < 10000; ++i) want[i] = i;
  CHECK(MatchIds(m, "orders.created") == want);
  CHECK(MatchIds(m, "orders.created") == want);
  CHECK(MatchIds(m, "orders.created", false) == want);

  // Overlapping second pattern: the union, deduplicated.
  for (uint32_t i = 5000; i < 15000; ++i) CHECK_EQ(m.Subscribe("orders.*", i), Status::kOk);
  want.resize(15000);
  for (uint32_t i = 0; i < 15000; ++i) want[i] = i;
  CHECK(MatchIds(m, "orders.created") == want);
  CHECK(MatchIds(m, "orders.created", false) == want);

  for (uint32_t i = 0; i < 10000; i += 2) CHECK_EQ(m.Unsubscribe("orders.created", i), Status::kOk);
  want.clear();
  for (uint32_t i = 0; i < 15000; ++i) {
    if (i >= 5000 || i % 2) want.push_back(i);
  }
  CHECK(MatchIds(m, "orders.created") == want);
}

TEST(DeepestSubjects) {
  // 512 tokens: the trie recursion at its deepest, under the sanitizers too.
  std::string subject = "a", stars = "*";
  for (int i = 1; i < 512; ++i) {
    subject += ".a";
    stars += ".*";
  }
  SubjectMatcher m;
  CHECK_EQ(m.Subscribe(stars, 1), Status::kOk);
  CHECK_EQ(m.Subscribe(subject, 2), Status::kOk);
  CHECK_EQ(m.Subscribe("a.>", 3), Status::kOk);
  CHECK_EQ(m.Subscribe(stars.substr(0, stars.size() - 2) + ".>", 4), Status::kOk);
  CHECK(MatchIds(m, subject) == (std::vector<uint32_t>{1, 2, 3, 4}));
  CHECK(MatchIds(m, subject, false) == (std::vector<uint32_t>{1, 2, 3, 4}));
  CHECK_EQ(m.Unsubscribe(stars, 1), Status::kOk);
  CHECK_EQ(m.Unsubscribe(subject, 2), Status::kOk);
  CHECK(MatchIds(m, subject) == (std::vector<uint32_t>{3, 4}));
}

TEST(RandomizedCrossCheck) {
  std::mt19937 rng(20240611);
  // "a*" and ">b" are literals that a reader who took wildcards by the byte would
  // confuse with "*" and ">".
  const char* const literals[] = {"a", "b", "c", "dd", "e-e", "a*", ">b"};
  auto random_subject = [&](bool pattern) {
    const int n = 1 + static_cast<int>(rng() % 5);
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (i) s += '.';
      const uint32_t r = rng() % 10;
      if (pattern && r == 0 && i == n - 1) {
        s += '>';
      } else if (pattern && r < 3) {
        s += '*';
      } else {
        s += literals[rng() % std::size(literals)];
      }
    }
    return s;
  };
  for (size_t cache : {SubjectMatcher::kDefaultCacheEntries, size_t{32}}) {
    SubjectMatcher m(cache);
    RefMatcher ref;
    for (int i = 0; i < 3000; ++i) {
      const std::string p = random_subject(true);
      const uint32_t id = rng() % 500;
      const bool dup = ref.Has(p, id);
      CHECK_EQ(m.Subscribe(p, id), dup ? Status::kInvalidArgument : Status::kOk);
      if (!dup) ref.Add(p, id);
    }
    CHECK_EQ(m.SubscriptionCount(), ref.subs.size());
    std::vector<std::string> subjects;
    for (int i = 0; i < 3000; ++i) subjects.push_back(random_subject(false));
    auto check_all = [&] {
      int wrong = 0;
      for (const std::string& s : subjects) {
        const std::vector<uint32_t> want = ref.Match(s);
        if (MatchIds(m, s) != want || MatchIds(m, s, false) != want) ++wrong;
      }
      CHECK_EQ(wrong, 0);
    };
    check_all();
    check_all();  // warm
    // Remove a random half, interleaved with matches.
    std::shuffle(ref.subs.begin(), ref.subs.end(), rng);
    const size_t keep = ref.subs.size() / 2;
    for (size_t i = ref.subs.size(); i-- > keep;) {
      CHECK_EQ(m.Unsubscribe(ref.subs[i].pattern, ref.subs[i].id), Status::kOk);
      if (i % 100 == 0) {
        const std::string& s = subjects[i % subjects.size()];
        ref.subs.erase(ref.subs.begin() + static_cast<std::ptrdiff_t>(i), ref.subs.end());
        CHECK(MatchIds(m, s) == ref.Match(s));
      }
    }
    ref.subs.erase(ref.subs.begin() + static_cast<std::ptrdiff_t>(keep), ref.subs.end());
    check_all();
    for (const RefMatcher::Sub& sub : ref.subs) CHECK_EQ(m.Unsubscribe(sub.pattern, sub.id), Status::kOk);
    CHECK_EQ(m.NodeCount(), size_t{0});
    CHECK_EQ(m.PatternCount(), size_t{0});
    ref.subs.clear();
    check_all();
  }
}
