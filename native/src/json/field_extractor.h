// Selective extraction of top-level fields from a JSON object with simdjson On-Demand:
// the gateway's I/O thread asks a `pub` frame for "subject", "key" and "priority" and
// gets offsets into the frame back, so no JS object is built for it.
//
// What Extract validates (the contract callers may rely on):
//   - the whole input is valid UTF-8, on every implementation (the SIMD kernels
//     check it in stage 1; under "fallback" a separate pass runs);
//   - the document is one object followed only by whitespace (a UTF-8 BOM before it
//     is skipped, as simdjson does);
//   - everything at the top level: keys (escapes included), ':' and ',', and every
//     top-level value token (string escapes, number grammar, true/false/null);
//   - strings are closed and contain no raw control characters, at any depth.
// What it does not: the insides of nested objects and arrays are skipped by bracket
// counting (On-Demand's skip), so `{"d":[tru]}` or `{"d":[1}}` can return kOk. A
// caller that needs a nested value validated parses the returned span itself. On
// such input, whether the flaw is noticed may differ between implementations and
// with the content of the padding bytes; on a valid document every path agrees.
// The leniency cannot make two readers disagree: a document Extract accepts that a
// strict parser would see differently is one the strict parser rejects.
//
// Errors are named by a full scalar validator (ValidateJsonObject below) that runs
// only after simdjson has rejected the input, so the status does not depend on
// which simdjson error fired first: kInvalidUtf8 beats kNotAnObject beats
// kTruncatedJson / kMalformedJson. kTruncatedJson means the input is a proper
// prefix of some valid JSON object (empty and whitespace-only inputs included);
// anything else wrong is kMalformedJson (trailing garbage among it).
//
// Strings with a \u escape of a lone surrogate are malformed here (they have no
// UTF-8 form), as in simdjson; JSON.parse would accept them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace myelin {

enum class JsonType : uint8_t { kMissing, kString, kNumber, kBool, kNull, kObject, kArray };

// Where one requested field's value lies in the caller's input.
//   kString: the raw body between the quotes; `escaped` is true when it holds a
//            backslash escape, and then UnescapeJsonString gives the text. Escapes
//            of a string Extract returned always unescape without error.
//   kNumber, kBool, kNull: the token ("-1.5e3", "true", "null").
//   kObject, kArray: the whole "{...}" / "[...]" text, without trailing whitespace.
//   kMissing: offset = length = 0.
struct FieldView {
  uint32_t offset;
  uint32_t length;
  JsonType type;
  bool escaped;
};

// At most this many names per Extract call: the per-field match is a linear scan.
inline constexpr std::size_t kMaxExtractFields = 16;

// Slack a caller can leave after a document so that Extract parses it in place
// instead of copying it (simdjson reads up to this many bytes past the end; their
// content does not matter). Equal to SIMDJSON_PADDING, which the .cc asserts.
inline constexpr std::size_t kJsonPadding = 64;

// Reusable extractor. Holds a simdjson On-Demand parser (its buffers grow to the
// largest document seen and are kept) and a padded scratch buffer. Not thread-safe:
// one per thread. Construction allocates nothing; the first Extract does.
class FieldExtractor {
 public:
  FieldExtractor() noexcept;
  ~FieldExtractor();
  FieldExtractor(FieldExtractor&&) noexcept;
  FieldExtractor& operator=(FieldExtractor&&) noexcept;
  FieldExtractor(const FieldExtractor&) = delete;
  FieldExtractor& operator=(const FieldExtractor&) = delete;

  // Looks up names[0..name_count) among the top-level fields of the JSON object in
  // data[0..len) and writes out[i] for names[i].
  //
  // capacity: bytes readable from data (>= len). With capacity - len >= kJsonPadding
  // the input is parsed in place; otherwise it is first copied into the scratch
  // buffer. Either way every FieldView offset is relative to `data`, and stays
  // meaningful as long as the caller's bytes do (nothing points into the scratch).
  //
  // Names are compared with the raw key bytes as written between the quotes, so a
  // key spelled with an escape ("\u0073ubject") matches only a name spelled the same
  // way. Every field is visited (the walk never stops early, so truncation and
  // trailing garbage are seen); when a key occurs twice the last one wins. A name
  // listed twice fills both slots.
  //
  // kOk, or another status with every out[i] set to kMissing (out[] is left alone
  // only when out, names or name_count themselves are the bad argument):
  //   kInvalidArgument  name_count == 0 or > kMaxExtractFields, names/out null,
  //                     data null with len > 0, capacity < len, len >= 4 GiB
  //   kInvalidUtf8 / kNotAnObject / kTruncatedJson / kMalformedJson  see above
  //   kOutOfMemory      growing the parser or scratch buffer failed
  //   kUnsupported      simdjson found no implementation for this CPU
  Status Extract(const uint8_t* data, std::size_t len, std::size_t capacity,
                 const std::string_view* names, std::size_t name_count,
                 FieldView* out) noexcept;

  // Validates one complete JSON value of any type (an object, array, string, number,
  // true/false/null) in data[0, len) with a full simdjson parse, nesting included:
  // what Extract leaves unchecked inside the objects and arrays it returns. The value
  // is copied into the padded scratch buffer first. kOk, kInvalidUtf8, kMalformedJson
  // (trailing content included), kTruncatedJson for empty input, kOutOfMemory,
  // kInvalidArgument for null data with len > 0. ~1 GB/s where ValidateJsonObject's
  // byte-at-a-time automaton is several times slower.
  Status ValidateValue(const uint8_t* data, std::size_t len) noexcept;

  // Extract over doc_count documents packed in buf, one native call per batch.
  // Document d is buf[offsets[d], offsets[d] + lengths[d]); the bytes after it in
  // buf (up to buf_len) count as its padding, so only a document ending within
  // kJsonPadding of buf_len is copied. Results go to out[d * name_count + i] and
  // statuses[d]; FieldView offsets here are relative to buf (not to the document),
  // so a caller slices buf directly. A document whose span lies outside buf gets
  // kInvalidArgument in statuses[d]; the call itself returns kInvalidArgument only
  // for bad arguments (the Extract list above, buf_len >= 4 GiB, null arrays with
  // doc_count > 0), and then writes nothing.
  Status ExtractBatch(const uint8_t* buf, std::size_t buf_len, const uint32_t* offsets,
                      const uint32_t* lengths, std::size_t doc_count,
                      const std::string_view* names, std::size_t name_count,
                      FieldView* out, Status* statuses) noexcept;

 private:
  struct Impl;
  // data copied into the scratch buffer with zeroed padding after it; nullptr on OOM.
  static const uint8_t* PaddedCopy(Impl& im, const uint8_t* data, std::size_t len) noexcept;
  Status EnsureImpl() noexcept;
  Status ExtractOne(const uint8_t* data, std::size_t len, std::size_t capacity,
                    uint32_t base, const std::string_view* names, std::size_t name_count,
                    FieldView* out) noexcept;

  std::unique_ptr<Impl> impl_;
};

// Decodes the raw body of a JSON string (no surrounding quotes) into UTF-8 in *out,
// which is cleared first. Handles every JSON escape, \uXXXX surrogate pairs
// included. kMalformedJson for a bad escape, a lone surrogate, a raw control
// character or an unescaped '"'; kInvalidUtf8 for invalid UTF-8 in raw; kOutOfMemory
// if *out cannot grow; kInvalidArgument for a null out. On error *out is empty.
Status UnescapeJsonString(std::string_view raw, std::string* out) noexcept;

// The full validator Extract uses to name its errors; slow (scalar, one byte at a
// time) and exposed for tests and fuzzers. kOk when data[0..len) is one valid JSON
// object (RFC 8259, plus: optional leading UTF-8 BOM, nesting at most 1024 deep, no
// lone surrogate escapes); otherwise the status Extract would return for it.
Status ValidateJsonObject(const uint8_t* data, std::size_t len) noexcept;

// simdjson picks its stage-1 kernels (structural indexing and UTF-8 validation, the
// bulk of the work) at run time; the On-Demand walk itself is compiled for the
// baseline CPU. These read and set that choice, which is process-wide state owned
// by simdjson: set it at start-up or in tests, never while another thread extracts.
// Each FieldExtractor notices a change on its next call and rebuilds its parser.

// Name of the active implementation ("icelake", "haswell", "westmere", "arm64",
// "fallback", ...); never null; runs CPU detection on first use.
const char* JsonImplementation() noexcept;

// Makes `name` the active implementation. kUnsupported when simdjson was built
// without it or this CPU cannot run it.
Status SetJsonImplementation(std::string_view name) noexcept;

}  // namespace myelin
