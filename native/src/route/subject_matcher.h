// SubjectMatcher maps NATS-style subscription patterns (see route/subject.h) to
// uint32_t subscription ids and answers "which ids does this publish subject reach".
//
// Threading: single-threaded. One thread owns a matcher and makes every call on it;
// even Match mutates (the result cache and scratch buffers), so there is no safe
// concurrent reader. Share across threads only with external locking.
//
// Structure: a trie over tokens. Each node has literal children in an open-addressing
// table keyed by token hash (lookups take a string_view and allocate nothing), one
// "*" child, the ids of patterns ending at the node, and the ids of patterns whose
// next and last token is ">". Only the whole tokens "*" and ">" are wildcards: "a*",
// ">b" or "**" is a literal child like any other, in patterns and subjects. A Match
// walks every branch that can apply, which is bounded by the trie size because each
// node is reached by exactly one path.
//
// Result cache: exact subject bytes -> sorted id list, bounded by entry count.
// Subscribe/Unsubscribe invalidate it in O(1) by bumping a generation; a stale entry
// is recomputed in place on its next hit or preferred for eviction. When full, an
// entry is evicted by CLOCK (second chance): entries hit since the hand last passed
// survive one sweep. Only subjects that passed ValidateSubject(kPublish) are ever
// inserted, so a hit skips validation: byte-equal to a valid subject is valid.
//
// Errors: every method is noexcept. Allocation failure becomes kOutOfMemory and
// leaves the matcher as it was before the call (the cache may have lost entries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "route/subject.h"

namespace myelin {

// Non-owning view of the ids a subject matched: deduplicated, ascending. Valid until
// the next non-const call on the matcher that produced it (Subscribe, Unsubscribe,
// Match, MatchUncached, ClearCache, destruction). ids may be null when count is 0.
struct MatchResult {
  const uint32_t* ids = nullptr;
  uint32_t count = 0;
};

class SubjectMatcher {
 public:
  // Counters since construction; ClearCache does not reset them.
  struct CacheStats {
    uint64_t hits = 0;       // Match answered from a current entry, no trie walk
    uint64_t misses = 0;     // Match that walked the trie (absent, or stale entry)
    uint64_t evictions = 0;  // entries dropped to stay within the bound
  };

  static constexpr std::size_t kDefaultCacheEntries = 65536;
  // Larger requests are clamped; keeps slot-count arithmetic far from overflow.
  static constexpr std::size_t kMaxCacheEntries = std::size_t{1} << 24;

  // max_cache_entries == 0 disables the cache (Match behaves as MatchUncached).
  // Allocates nothing; memory is taken on first use.
  explicit SubjectMatcher(std::size_t max_cache_entries = kDefaultCacheEntries) noexcept;
  ~SubjectMatcher();

  SubjectMatcher(const SubjectMatcher&) = delete;
  SubjectMatcher& operator=(const SubjectMatcher&) = delete;

  // Validates pattern as SubjectKind::kPattern. A given (pattern, id) pair may be
  // present once: a second Subscribe of it is kInvalidArgument. The same id under
  // different patterns is fine; Match reports it once.
  Status Subscribe(std::string_view pattern, uint32_t id) noexcept;

  // kNotFound when (pattern, id) is not subscribed; trie nodes left empty are freed.
  // An invalid pattern is reported as ValidateSubject would report it.
  Status Unsubscribe(std::string_view pattern, uint32_t id) noexcept;

  // Validates subject as SubjectKind::kPublish (a wildcard token is kInvalidSubject;
  // '*' or '>' inside a longer token is literal and matches only itself) and
  // stores the matching ids in *out (see MatchResult for its lifetime). A null out is
  // kInvalidArgument. A cache hit allocates nothing.
  Status Match(std::string_view subject, MatchResult* out) noexcept;

  // Same result as Match, always from the trie; neither reads nor fills the cache.
  Status MatchUncached(std::string_view subject, MatchResult* out) noexcept;

  // Drops every cached result and frees the cache's memory.
  void ClearCache() noexcept;

  // Distinct patterns with at least one id.
  std::size_t PatternCount() const noexcept { return pattern_count_; }
  // (pattern, id) pairs.
  std::size_t SubscriptionCount() const noexcept { return subscription_count_; }
  // Trie nodes other than the root; lets tests see that Unsubscribe prunes.
  std::size_t NodeCount() const noexcept { return node_count_; }
  // Entries the cache holds, including ones a later Subscribe/Unsubscribe made stale
  // (recomputed on their next hit); never above CacheCapacity().
  std::size_t CacheSize() const noexcept { return cache_entries_; }
  std::size_t CacheCapacity() const noexcept { return cache_limit_; }
  CacheStats GetCacheStats() const noexcept { return stats_; }

 private:
  struct Node;
  struct CacheEntry;
  struct CacheSlot {
    uint64_t hash;
    CacheEntry* entry;  // null: empty slot. Owned by the matcher.
  };

  uint64_t HashToken(std::string_view token) const noexcept;

  // Trie walk for a validated publish subject. On kOk the result is in *out, pointing
  // either into a trie node (exactly one id list matched) or into ids_.
  Status Collect(std::string_view subject, MatchResult* out) noexcept;
  void CollectFrom(const Node* node, std::size_t depth);

  // Removes id (if non-null) along pattern's path and frees nodes left empty.
  Status RemoveAlong(Node* node, SubjectTokenizer tokens, const uint32_t* id) noexcept;
  Status EraseId(std::vector<uint32_t>* list, uint32_t id) noexcept;

  std::size_t CacheFind(std::string_view subject, uint64_t hash) const noexcept;
  // Best effort: on allocation failure the result is simply not cached.
  const uint32_t* CacheInsert(std::string_view subject, uint64_t hash,
                              const MatchResult& r) noexcept;
  const uint32_t* CacheRefresh(std::size_t slot, const MatchResult& r) noexcept;
  bool CacheGrow() noexcept;
  void CacheEvictOne() noexcept;
  void CacheEraseSlot(std::size_t slot) noexcept;

  uint64_t seed_;
  std::unique_ptr<Node> root_;  // created by the first Subscribe
  std::size_t pattern_count_ = 0;
  std::size_t subscription_count_ = 0;
  std::size_t node_count_ = 0;
  // Bumped by every Subscribe/Unsubscribe that changes the trie; cache entries made
  // under an older generation are stale.
  uint64_t generation_ = 1;

  std::size_t cache_limit_;
  std::size_t cache_max_slots_;  // power of two, >= 2 * cache_limit_: load <= 1/2
  std::unique_ptr<CacheSlot[]> cache_slots_;
  std::size_t cache_mask_ = 0;  // slot count - 1; meaningless while cache_slots_ null
  std::size_t cache_entries_ = 0;
  std::size_t clock_hand_ = 0;
  CacheStats stats_;

  // Scratch reused across Match calls so a miss does not allocate once warmed up.
  std::vector<std::string_view> tokens_;
  std::vector<uint64_t> token_hashes_;
  std::vector<const std::vector<uint32_t>*> hit_lists_;
  std::vector<uint32_t> ids_;
};

}  // namespace myelin
