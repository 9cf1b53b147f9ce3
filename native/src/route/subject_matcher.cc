#include "route/subject_matcher.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#if defined(_MSC_VER) && !defined(__clang__) && defined(_M_X64)
#include <intrin.h>
#endif

namespace myelin {

namespace {

// --- hashing ------------------------------------------------------------------------
// A wyhash-style 64-bit hash (multiply-fold mixing, overlapping reads for short
// inputs). Used for whole subjects (cache keys) and single tokens (trie children), so
// the short-input path matters most: subjects are typically 10-60 bytes, tokens 1-16.
// Not persisted, so byte order does not need to be fixed.

constexpr uint64_t kP0 = 0xa0761d6478bd642fULL;
constexpr uint64_t kP1 = 0xe7037ed1a0b428dbULL;
constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ULL;
constexpr uint64_t kP3 = 0x589965cc75374cc3ULL;

// 64x64 -> 128 multiply; *lo and *hi receive the halves.
inline void Mul128(uint64_t a, uint64_t b, uint64_t* lo, uint64_t* hi) noexcept {
#if defined(__SIZEOF_INT128__)
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  *lo = static_cast<uint64_t>(r);
  *hi = static_cast<uint64_t>(r >> 64);
#elif defined(_MSC_VER) && defined(_M_X64)
  *lo = _umul128(a, b, hi);
#else
  const uint64_t al = a & 0xffffffffu, ah = a >> 32, bl = b & 0xffffffffu, bh = b >> 32;
  const uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  *lo = (mid << 32) | (ll & 0xffffffffu);
  *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

inline uint64_t Mix(uint64_t a, uint64_t b) noexcept {
  uint64_t lo, hi;
  Mul128(a, b, &lo, &hi);
  return lo ^ hi;
}

inline uint64_t Read8(const char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t Read4(const char* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint64_t Hash64(const char* p, std::size_t n, uint64_t seed) noexcept {
  seed ^= Mix(seed ^ kP0, kP1);
  uint64_t a, b;
  if (n <= 16) {
    if (n >= 4) {
      const std::size_t q = (n >> 3) << 2;  // 0 or 4: two overlapping 4-byte pairs
      a = (Read4(p) << 32) | Read4(p + q);
      b = (Read4(p + n - 4) << 32) | Read4(p + n - 4 - q);
    } else if (n > 0) {
      a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
          (uint64_t{static_cast<uint8_t>(p[n >> 1])} << 8) | static_cast<uint8_t>(p[n - 1]);
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    std::size_t i = n;
    if (i > 48) {
      uint64_t s1 = seed, s2 = seed;
      do {
        seed = Mix(Read8(p) ^ kP1, Read8(p + 8) ^ seed);
        s1 = Mix(Read8(p + 16) ^ kP2, Read8(p + 24) ^ s1);
        s2 = Mix(Read8(p + 32) ^ kP3, Read8(p + 40) ^ s2);
        p += 48;
        i -= 48;
      } while (i > 48);
      seed ^= s1 ^ s2;
    }
    while (i > 16) {
      seed = Mix(Read8(p) ^ kP1, Read8(p + 8) ^ seed);
      p += 16;
      i -= 16;
    }
    // Reads the last 16 bytes of the input, overlapping what the loop consumed.
    a = Read8(p + i - 16);
    b = Read8(p + i - 8);
  }
  uint64_t lo, hi;
  Mul128(a ^ kP1, b ^ seed, &lo, &hi);
  return Mix(lo ^ kP0 ^ n, hi ^ kP1);
}

constexpr std::size_t kNoSlot = std::numeric_limits<std::size_t>::max();

// --- trie children --------------------------------------------------------------------
// Open addressing, linear probing, load <= 1/2, backward-shift deletion (no
// tombstones). Owns its nodes. A template only so it can name the matcher's private
// Node type from inside Node's own definition.
template <typename NodeT>
class ChildTable {
 public:
  ChildTable() noexcept = default;
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;
  ~ChildTable() {
    if (!slots_) return;
    for (std::size_t i = 0; i <= mask_; ++i) delete slots_[i].node;
  }

  std::size_t size() const noexcept { return size_; }

  NodeT* Find(std::string_view token, uint64_t hash) const noexcept {
    if (size_ == 0) return nullptr;
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.node == nullptr) return nullptr;
      if (s.hash == hash && s.node->token == token) return s.node;
    }
  }

  // Precondition: no child with this token. Takes *node on success. May throw
  // std::bad_alloc while growing, before any change: *node then still owns the node.
  void Insert(uint64_t hash, std::unique_ptr<NodeT>* node) {
    if (!slots_ || (size_ + 1) * 2 > mask_ + 1) Rehash(slots_ ? (mask_ + 1) * 2 : 4);
    Place(hash, node->release());
    ++size_;
  }

  // Frees the child node and, once the table is empty, the slot array.
  void Erase(uint64_t hash, const NodeT* node) noexcept {
    std::size_t hole = hash & mask_;
    while (slots_[hole].node != node) hole = (hole + 1) & mask_;
    delete slots_[hole].node;
    slots_[hole] = Slot{0, nullptr};
    if (--size_ == 0) {
      slots_.reset();
      mask_ = 0;
      return;
    }
    for (std::size_t j = (hole + 1) & mask_; slots_[j].node; j = (j + 1) & mask_) {
      const std::size_t ideal = slots_[j].hash & mask_;
      // slots_[j] may move back into the hole only if the hole lies within its probe
      // run [ideal, j), or a later Find starting at ideal would stop short of it.
      if (((j - ideal) & mask_) >= ((j - hole) & mask_)) {
        slots_[hole] = slots_[j];
        slots_[j] = Slot{0, nullptr};
        hole = j;
      }
    }
  }

 private:
  struct Slot {
    uint64_t hash;
    NodeT* node;
  };

  void Place(uint64_t hash, NodeT* node) noexcept {
    std::size_t i = hash & mask_;
    while (slots_[i].node) i = (i + 1) & mask_;
    slots_[i] = Slot{hash, node};
  }

  void Rehash(std::size_t count) {
    std::unique_ptr<Slot[]> old(new Slot[count]());
    old.swap(slots_);
    const std::size_t old_count = old ? mask_ + 1 : 0;
    mask_ = count - 1;
    for (std::size_t i = 0; i < old_count; ++i) {
      if (old[i].node) Place(old[i].hash, old[i].node);
    }
  }

  std::unique_ptr<Slot[]> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace

// --- trie node --------------------------------------------------------------------------

struct SubjectMatcher::Node {
  std::string token;  // the literal that leads here from the parent; empty for root and "*"
  ChildTable<Node> children;
  std::unique_ptr<Node> star;
  std::vector<uint32_t> ids;       // patterns ending here; sorted, unique
  std::vector<uint32_t> tail_ids;  // patterns whose next and last token is ">"; sorted, unique

  bool Empty() const noexcept {
    return children.size() == 0 && !star && ids.empty() && tail_ids.empty();
  }
};

// --- cache entry ------------------------------------------------------------------------
// One malloc block: this header, the key bytes, then the ids 4-byte aligned. Key next to
// the header keeps the hit path (header + memcmp) on as few cache lines as possible.
struct SubjectMatcher::CacheEntry {
  uint64_t generation;
  uint32_t key_len;
  uint32_t count;
  uint32_t capacity;    // ids the block has room for
  uint32_t referenced;  // CLOCK bit: set by a hit, cleared as the hand passes

  static std::size_t IdsOffset(std::size_t key_len) noexcept {
    return (sizeof(CacheEntry) + key_len + 3) & ~std::size_t{3};
  }
  const char* Key() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  uint32_t* Ids() noexcept {
    return reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(this) + IdsOffset(key_len));
  }

  // Null on allocation failure.
  static CacheEntry* Create(std::string_view key, const MatchResult& r,
                            uint64_t generation) noexcept {
    void* mem = std::malloc(IdsOffset(key.size()) + std::size_t{r.count} * sizeof(uint32_t));
    if (!mem) return nullptr;
    auto* e = new (mem) CacheEntry{generation, static_cast<uint32_t>(key.size()), r.count,
                                   r.count, 0};
    std::memcpy(reinterpret_cast<char*>(e + 1), key.data(), key.size());
    if (r.count) std::memcpy(e->Ids(), r.ids, std::size_t{r.count} * sizeof(uint32_t));
    return e;
  }
  static void Destroy(CacheEntry* e) noexcept { std::free(e); }
};

// --- matcher ------------------------------------------------------------------------------

SubjectMatcher::SubjectMatcher(std::size_t max_cache_entries) noexcept
    // Seeding from the object's address varies the hash per instance and per run
    // (ASLR), which makes collision-flooding a long-lived matcher harder without any
    // static state or entropy source.
    : seed_(Mix(static_cast<uint64_t>(reinterpret_cast<std::uintptr_t>(this)) ^ kP2, kP3)),
      cache_limit_(std::min(max_cache_entries, kMaxCacheEntries)) {
  std::size_t slots = 2;
  while (slots < cache_limit_ * 2) slots <<= 1;
  cache_max_slots_ = slots;
}

SubjectMatcher::~SubjectMatcher() { ClearCache(); }

uint64_t SubjectMatcher::HashToken(std::string_view token) const noexcept {
  return Hash64(token.data(), token.size(), seed_);
}

Status SubjectMatcher::Subscribe(std::string_view pattern, uint32_t id) noexcept {
  const Status st = ValidateSubject(pattern, SubjectKind::kPattern);
  if (!Ok(st)) return st;
  try {
    if (!root_) root_ = std::make_unique<Node>();
    Node* node = root_.get();
    std::vector<uint32_t>* list = nullptr;
    SubjectTokenizer tokens(pattern);
    std::string_view tok;
    while (tokens.Next(&tok)) {
      if (IsTailWildcard(tok)) {  // validation put it last
        list = &node->tail_ids;
        break;
      }
      if (IsAnyTokenWildcard(tok)) {
        if (!node->star) {
          node->star = std::make_unique<Node>();
          ++node_count_;
        }
        node = node->star.get();
        continue;
      }
      const uint64_t h = HashToken(tok);
      Node* child = node->children.Find(tok, h);
      if (!child) {
        auto fresh = std::make_unique<Node>();
        fresh->token.assign(tok.data(), tok.size());
        child = fresh.get();
        node->children.Insert(h, &fresh);
        ++node_count_;
      }
      node = child;
    }
    if (!list) list = &node->ids;
    const auto it = std::lower_bound(list->begin(), list->end(), id);
    // A present id means every node on the path already existed: nothing to prune.
    if (it != list->end() && *it == id) return Status::kInvalidArgument;
    const bool first = list->empty();
    list->insert(it, id);  // strong guarantee: uint32_t moves cannot throw
    if (first) ++pattern_count_;
    ++subscription_count_;
    ++generation_;
    return Status::kOk;
  } catch (const std::bad_alloc&) {
    if (root_) RemoveAlong(root_.get(), SubjectTokenizer(pattern), nullptr);
    return Status::kOutOfMemory;
  } catch (...) {
    if (root_) RemoveAlong(root_.get(), SubjectTokenizer(pattern), nullptr);
    return Status::kInternal;
  }
}

Status SubjectMatcher::Unsubscribe(std::string_view pattern, uint32_t id) noexcept {
  const Status st = ValidateSubject(pattern, SubjectKind::kPattern);
  if (!Ok(st)) return st;
  if (!root_) return Status::kNotFound;
  return RemoveAlong(root_.get(), SubjectTokenizer(pattern), &id);
}

Status SubjectMatcher::EraseId(std::vector<uint32_t>* list, uint32_t id) noexcept {
  const auto it = std::lower_bound(list->begin(), list->end(), id);
  if (it == list->end() || *it != id) return Status::kNotFound;
  list->erase(it);
  if (list->empty()) {
    std::vector<uint32_t>().swap(*list);  // give the memory back; cannot throw
    --pattern_count_;
  }
  --subscription_count_;
  ++generation_;
  return Status::kOk;
}

// Recursion depth is bounded by the token count, at most kMaxSubjectBytes / 2 + 1.
// Allocates nothing, so it is also the cleanup path after a failed Subscribe.
Status SubjectMatcher::RemoveAlong(Node* node, SubjectTokenizer tokens,
                                   const uint32_t* id) noexcept {
  const Status absent = id ? Status::kNotFound : Status::kOk;
  std::string_view tok;
  if (!tokens.Next(&tok)) return id ? EraseId(&node->ids, *id) : Status::kOk;
  if (IsTailWildcard(tok)) return id ? EraseId(&node->tail_ids, *id) : Status::kOk;
  if (IsAnyTokenWildcard(tok)) {
    Node* child = node->star.get();
    if (!child) return absent;
    const Status st = RemoveAlong(child, tokens, id);
    if (child->Empty()) {
      node->star.reset();
      --node_count_;
    }
    return st;
  }
  const uint64_t h = HashToken(tok);
  Node* child = node->children.Find(tok, h);
  if (!child) return absent;
  const Status st = RemoveAlong(child, tokens, id);
  if (child->Empty()) {
    node->children.Erase(h, child);
    --node_count_;
  }
  return st;
}

// Each trie node has one path from the root, so a walk visits it at most once: the
// work is bounded by the trie size even though "*" and literal branches both recurse.
void SubjectMatcher::CollectFrom(const Node* node, std::size_t depth) {
  if (depth == tokens_.size()) {
    if (!node->ids.empty()) hit_lists_.push_back(&node->ids);
    return;
  }
  // depth < token count: at least one token remains, which is what ">" needs.
  if (!node->tail_ids.empty()) hit_lists_.push_back(&node->tail_ids);
  if (const Node* child = node->children.Find(tokens_[depth], token_hashes_[depth])) {
    CollectFrom(child, depth + 1);
  }
  if (node->star) CollectFrom(node->star.get(), depth + 1);
}

Status SubjectMatcher::Collect(std::string_view subject, MatchResult* out) noexcept {
  try {
    tokens_.clear();
    token_hashes_.clear();
    hit_lists_.clear();
    SubjectTokenizer tokens(subject);
    std::string_view tok;
    while (tokens.Next(&tok)) {
      tokens_.push_back(tok);
      token_hashes_.push_back(HashToken(tok));
    }
    if (root_) CollectFrom(root_.get(), 0);
    if (hit_lists_.empty()) {
      *out = MatchResult{};
      return Status::kOk;
    }
    const std::vector<uint32_t>* only = hit_lists_[0];
    if (hit_lists_.size() > 1) {
      ids_.clear();
      for (const std::vector<uint32_t>* l : hit_lists_) ids_.insert(ids_.end(), l->begin(), l->end());
      std::sort(ids_.begin(), ids_.end());
      ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
      only = &ids_;
    }
    if (only->size() > std::numeric_limits<uint32_t>::max()) return Status::kInternal;
    *out = MatchResult{only->data(), static_cast<uint32_t>(only->size())};
    return Status::kOk;
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  } catch (...) {
    return Status::kInternal;
  }
}

Status SubjectMatcher::MatchUncached(std::string_view subject, MatchResult* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  const Status st = ValidateSubject(subject, SubjectKind::kPublish);
  if (!Ok(st)) return st;
  return Collect(subject, out);
}

Status SubjectMatcher::Match(std::string_view subject, MatchResult* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  if (cache_limit_ == 0) return MatchUncached(subject, out);
  // The cheap half of validation comes first so an over-long subject is never hashed.
  if (subject.empty()) return Status::kInvalidSubject;
  if (subject.size() > kMaxSubjectBytes) return Status::kSubjectTooLong;
  const uint64_t h = Hash64(subject.data(), subject.size(), seed_);
  const std::size_t slot = CacheFind(subject, h);
  if (slot != kNoSlot) {
    // Byte-equal to a subject that passed validation when it was inserted.
    CacheEntry* e = cache_slots_[slot].entry;
    if (e->generation == generation_) [[likely]] {
      e->referenced = 1;
      ++stats_.hits;
      *out = MatchResult{e->count ? e->Ids() : nullptr, e->count};
      return Status::kOk;
    }
    ++stats_.misses;
    MatchResult r;
    const Status st = Collect(subject, &r);
    if (!Ok(st)) return st;
    const uint32_t* cached = CacheRefresh(slot, r);
    *out = MatchResult{r.count ? (cached ? cached : r.ids) : nullptr, r.count};
    return Status::kOk;
  }
  Status st = ValidateSubject(subject, SubjectKind::kPublish);
  if (!Ok(st)) return st;
  ++stats_.misses;
  MatchResult r;
  st = Collect(subject, &r);
  if (!Ok(st)) return st;
  const uint32_t* cached = CacheInsert(subject, h, r);
  *out = MatchResult{r.count ? (cached ? cached : r.ids) : nullptr, r.count};
  return Status::kOk;
}

// --- cache ----------------------------------------------------------------------------------

std::size_t SubjectMatcher::CacheFind(std::string_view subject, uint64_t hash) const noexcept {
  if (!cache_slots_) return kNoSlot;
  for (std::size_t i = hash & cache_mask_;; i = (i + 1) & cache_mask_) {
    const CacheSlot& s = cache_slots_[i];
    if (s.entry == nullptr) return kNoSlot;
    if (s.hash == hash && s.entry->key_len == subject.size() &&
        std::memcmp(s.entry->Key(), subject.data(), subject.size()) == 0) {
      return i;
    }
  }
}

bool SubjectMatcher::CacheGrow() noexcept {
  const std::size_t count = cache_slots_ ? (cache_mask_ + 1) * 2 : std::min<std::size_t>(16, cache_max_slots_);
  if (count > cache_max_slots_) return false;
  std::unique_ptr<CacheSlot[]> old(new (std::nothrow) CacheSlot[count]());
  if (!old) return false;
  old.swap(cache_slots_);
  const std::size_t old_count = old ? cache_mask_ + 1 : 0;
  cache_mask_ = count - 1;
  for (std::size_t i = 0; i < old_count; ++i) {
    if (!old[i].entry) continue;
    std::size_t j = old[i].hash & cache_mask_;
    while (cache_slots_[j].entry) j = (j + 1) & cache_mask_;
    cache_slots_[j] = old[i];
  }
  clock_hand_ = 0;
  return true;
}

void SubjectMatcher::CacheEraseSlot(std::size_t slot) noexcept {
  CacheEntry::Destroy(cache_slots_[slot].entry);
  cache_slots_[slot] = CacheSlot{0, nullptr};
  --cache_entries_;
  std::size_t hole = slot;
  for (std::size_t j = (hole + 1) & cache_mask_; cache_slots_[j].entry; j = (j + 1) & cache_mask_) {
    const std::size_t ideal = cache_slots_[j].hash & cache_mask_;
    if (((j - ideal) & cache_mask_) >= ((j - hole) & cache_mask_)) {
      cache_slots_[hole] = cache_slots_[j];
      cache_slots_[j] = CacheSlot{0, nullptr};
      hole = j;
    }
  }
}

// Precondition: cache_entries_ > 0. A stale or unreferenced entry goes at once; a
// referenced one loses its bit and survives until the hand comes round again, so the
// loop ends within two sweeps. New entries start unreferenced: a subject seen once
// (a reply inbox, a scan) is evicted before any subject that has been hit.
void SubjectMatcher::CacheEvictOne() noexcept {
  for (;;) {
    const std::size_t i = clock_hand_ & cache_mask_;
    clock_hand_ = i + 1;
    CacheEntry* e = cache_slots_[i].entry;
    if (!e) continue;
    if (e->generation != generation_ || !e->referenced) {
      CacheEraseSlot(i);
      ++stats_.evictions;
      return;
    }
    e->referenced = 0;
  }
}

const uint32_t* SubjectMatcher::CacheInsert(std::string_view subject, uint64_t hash,
                                            const MatchResult& r) noexcept {
  while (cache_entries_ >= cache_limit_) CacheEvictOne();
  if (!cache_slots_ || (cache_entries_ + 1) * 2 > cache_mask_ + 1) {
    if (!CacheGrow()) {
      // Out of memory for a bigger table: make room instead, keeping load <= 1/2.
      if (!cache_slots_ || cache_entries_ == 0) return nullptr;
      CacheEvictOne();
    }
  }
  CacheEntry* e = CacheEntry::Create(subject, r, generation_);
  if (!e) return nullptr;
  std::size_t i = hash & cache_mask_;
  while (cache_slots_[i].entry) i = (i + 1) & cache_mask_;
  cache_slots_[i] = CacheSlot{hash, e};
  ++cache_entries_;
  return e->Ids();
}

const uint32_t* SubjectMatcher::CacheRefresh(std::size_t slot, const MatchResult& r) noexcept {
  CacheEntry* e = cache_slots_[slot].entry;
  if (r.count > e->capacity) {
    CacheEntry* bigger =
        CacheEntry::Create(std::string_view(e->Key(), e->key_len), r, generation_);
    if (!bigger) {
      CacheEraseSlot(slot);
      return nullptr;
    }
    bigger->referenced = 1;
    CacheEntry::Destroy(e);
    cache_slots_[slot].entry = bigger;
    return bigger->Ids();
  }
  e->generation = generation_;
  e->count = r.count;
  e->referenced = 1;  // this refresh is a hit
  if (r.count) std::memcpy(e->Ids(), r.ids, std::size_t{r.count} * sizeof(uint32_t));
  return e->Ids();
}

void SubjectMatcher::ClearCache() noexcept {
  if (cache_slots_) {
    for (std::size_t i = 0; i <= cache_mask_; ++i) {
      if (cache_slots_[i].entry) CacheEntry::Destroy(cache_slots_[i].entry);
    }
  }
  cache_slots_.reset();
  cache_mask_ = 0;
  cache_entries_ = 0;
  clock_hand_ = 0;
}

}  // namespace myelin
