// FieldExtractor, UnescapeJsonString and ValidateJsonObject. Every JSON_TEST runs
// twice: under the implementation simdjson picks for this CPU, and again as
// <name>_fallback under the scalar fallback kernels (the one every CPU can run), so a
// SIMD-only or scalar-only difference shows up as a failing pair.
#include "json/field_extractor.h"

#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"

namespace myelin {
namespace {

// Switches simdjson to the fallback kernels for one scope and restores the previous
// choice after (simdjson's choice is process-wide).
class FallbackScope {
 public:
  FallbackScope() : saved_(JsonImplementation()) {
    CHECK_EQ(SetJsonImplementation("fallback"), Status::kOk);
    CHECK_EQ(std::string(JsonImplementation()), std::string("fallback"));
  }
  ~FallbackScope() { CHECK_EQ(SetJsonImplementation(saved_), Status::kOk); }

 private:
  std::string saved_;
};

#define JSON_TEST(name)                               \
  static void name##_body();                          \
  TEST(name) { name##_body(); }                       \
  TEST(name##_fallback) {                             \
    FallbackScope scope;                              \
    name##_body();                                    \
  }                                                   \
  static void name##_body()

enum class Pad { kPadded, kExact, kShort };

// Copies json into a fresh heap block and extracts from it. kPadded leaves
// kJsonPadding slack (parsed in place); kExact allocates exactly len bytes so ASan
// catches any read past the end (copied first); kShort leaves 10 bytes of slack,
// less than simdjson needs (copied first).
struct Result {
  Status status;
  std::vector<FieldView> views;
  std::string json;

  std::string_view Text(size_t i) const {
    return std::string_view(json).substr(views[i].offset, views[i].length);
  }
};

Result Extract(FieldExtractor& ex, std::string_view json, std::initializer_list<std::string_view> names,
               Pad pad = Pad::kPadded) {
  const size_t slack = pad == Pad::kPadded ? kJsonPadding : pad == Pad::kShort ? 10 : 0;
  std::unique_ptr<uint8_t[]> block(new uint8_t[json.size() + slack + 1]);
  if (!json.empty()) std::memcpy(block.get(), json.data(), json.size());
  std::memset(block.get() + json.size(), '}', slack);  // hostile padding content
  Result r{Status::kInternal, std::vector<FieldView>(names.size()), std::string(json)};
  r.status = ex.Extract(block.get(), json.size(), json.size() + slack, names.begin(), names.size(),
                        r.views.data());
  return r;
}

// Extract through all three buffer layouts, checking they agree; returns kPadded's.
Result ExtractAll(std::string_view json, std::initializer_list<std::string_view> names) {
  FieldExtractor ex;
  Result padded = Extract(ex, json, names, Pad::kPadded);
  for (Pad pad : {Pad::kExact, Pad::kShort}) {
    Result other = Extract(ex, json, names, pad);
    CHECK_EQ(other.status, padded.status);
    for (size_t i = 0; i < names.size(); ++i) {
      CHECK_EQ(other.views[i].offset, padded.views[i].offset);
      CHECK_EQ(other.views[i].length, padded.views[i].length);
      CHECK_EQ(other.views[i].type, padded.views[i].type);
      CHECK_EQ(other.views[i].escaped, padded.views[i].escaped);
    }
  }
  return padded;
}

Status StatusOf(std::string_view json) {
  Result r = ExtractAll(json, {"a", "subject"});
  // Errors are named by the reference validator; keep the two in lockstep.
  if (!Ok(r.status)) {
    CHECK_EQ(ValidateJsonObject(reinterpret_cast<const uint8_t*>(json.data()), json.size()),
             r.status);
    for (const FieldView& v : r.views) CHECK_EQ(v.type, JsonType::kMissing);
  }
  return r.status;
}

void CheckAllMissing(const Result& r) {
  for (const FieldView& v : r.views) {
    CHECK_EQ(v.type, JsonType::kMissing);
    CHECK_EQ(v.offset, 0u);
    CHECK_EQ(v.length, 0u);
  }
}

// A real `pub` frame with non-ASCII text (2-, 3- and 4-byte characters), escapes,
// nested objects and arrays, numbers and literals.
constexpr std::string_view kEvent =
    "{\"op\":\"pub\",\"subject\":\"orders.eu.created\",\"key\":\"u-42\",\"priority\":\"high\","
    "\"data\":{\"order\":\"o-9\",\"customer\":{\"name\":\"Zo\xC3\xAB \\\"Z\\\"\",\"city\":"
    "\"\xE6\x9D\xB1\xE4\xBA\xAC\"},\"items\":[{\"sku\":\"A-1\",\"qty\":2,\"price\":19.99},"
    "{\"sku\":\"B-2\",\"qty\":1,\"price\":5e2,\"tags\":[\"gift\",\"\xF0\x9F\x8E\x81\"]}],"
    "\"paid\":true,\"coupon\":null},\"ts\":1718000000123}";

}  // namespace

// --- happy paths -------------------------------------------------------------------

JSON_TEST(ExtractsTheFieldsOfARealEvent) {
  Result r = ExtractAll(kEvent, {"subject", "key", "priority", "ts", "op", "absent"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.Text(0), std::string_view("orders.eu.created"));
  CHECK_EQ(r.Text(1), std::string_view("u-42"));
  CHECK_EQ(r.Text(2), std::string_view("high"));
  CHECK_EQ(r.Text(3), std::string_view("1718000000123"));
  CHECK_EQ(r.views[3].type, JsonType::kNumber);
  CHECK_EQ(r.Text(4), std::string_view("pub"));
  CHECK_EQ(r.views[5].type, JsonType::kMissing);
  for (size_t i = 0; i < 3; ++i) {
    CHECK_EQ(r.views[i].type, JsonType::kString);
    CHECK(!r.views[i].escaped);
  }
  CHECK_EQ(ValidateJsonObject(reinterpret_cast<const uint8_t*>(kEvent.data()), kEvent.size()),
           Status::kOk);
}

JSON_TEST(ReportsEveryValueType) {
  const std::string_view json =
      "{\"s\":\"str\",\"n\":-12.5e+3,\"t\":true,\"f\":false,\"z\":null,"
      "\"o\":{\"a\":[1,{\"b\":\"}]\"}]},\"a\":[1,\"]\",[2,{}]],\"e\":\"\",\"i\":0}";
  Result r = ExtractAll(json, {"s", "n", "t", "f", "z", "o", "a", "e", "i"});
  CHECK_EQ(r.status, Status::kOk);
  const JsonType types[] = {JsonType::kString, JsonType::kNumber, JsonType::kBool,
                            JsonType::kBool,   JsonType::kNull,   JsonType::kObject,
                            JsonType::kArray,  JsonType::kString, JsonType::kNumber};
  const std::string_view texts[] = {"str",   "-12.5e+3", "true",
                                    "false", "null",     "{\"a\":[1,{\"b\":\"}]\"}]}",
                                    "[1,\"]\",[2,{}]]", "", "0"};
  for (size_t i = 0; i < 9; ++i) {
    CHECK_EQ(r.views[i].type, types[i]);
    CHECK_EQ(r.Text(i), texts[i]);
    CHECK(!r.views[i].escaped);
  }
}

JSON_TEST(SkipsNestedFieldsWithTheSameNames) {
  const std::string_view json =
      "{\"data\":{\"subject\":\"inner\",\"x\":[{\"key\":\"no\"},\"\\\"}\"]},"
      "\"subject\":\"outer\",\"meta\":[{\"priority\":\"low\"}]}";
  Result r = ExtractAll(json, {"subject", "key", "priority"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.Text(0), std::string_view("outer"));
  CHECK_EQ(r.views[1].type, JsonType::kMissing);
  CHECK_EQ(r.views[2].type, JsonType::kMissing);
}

JSON_TEST(MissingFieldsAndEmptyObject) {
  Result r = ExtractAll("{}", {"subject", "key"});
  CHECK_EQ(r.status, Status::kOk);
  CheckAllMissing(r);
  r = ExtractAll("{\"a\":1}", {"subject"});
  CHECK_EQ(r.status, Status::kOk);
  CheckAllMissing(r);
}

JSON_TEST(EscapedStringsAreFlaggedAndUnescape) {
  // a"b\c/d<LF>é😀 with every kind of escape, the emoji as a surrogate pair.
  const std::string_view json =
      "{\"subject\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\\b\\f\\r\\t\",\"key\":\"plain\"}";
  Result r = ExtractAll(json, {"subject", "key"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.views[0].type, JsonType::kString);
  CHECK(r.views[0].escaped);
  CHECK(!r.views[1].escaped);
  std::string text;
  CHECK_EQ(UnescapeJsonString(r.Text(0), &text), Status::kOk);
  CHECK_EQ(text, std::string("a\"b\\c/d\n\xC3\xA9\xF0\x9F\x98\x80\b\f\r\t"));
  CHECK_EQ(UnescapeJsonString(r.Text(1), &text), Status::kOk);
  CHECK_EQ(text, std::string("plain"));
}

JSON_TEST(UnescapeHandlesEveryEscapeAndRejectsBadOnes) {
  std::string out;
  CHECK_EQ(UnescapeJsonString("", &out), Status::kOk);
  CHECK_EQ(out, std::string(""));
  CHECK_EQ(UnescapeJsonString("\\u0041\\u00DF\\u20AC\\uD834\\uDD1E", &out), Status::kOk);
  CHECK_EQ(out, std::string("A\xC3\x9F\xE2\x82\xAC\xF0\x9D\x84\x9E"));
  CHECK_EQ(UnescapeJsonString("\\u0000x", &out), Status::kOk);
  CHECK_EQ(out, std::string("\0x", 2));
  CHECK_EQ(UnescapeJsonString("caf\xC3\xA9", &out), Status::kOk);
  CHECK_EQ(out, std::string("caf\xC3\xA9"));

  const std::string_view malformed[] = {
      "\\",             // escape cut off
      "\\x",            // unknown escape
      "\\u12",          // short \u
      "\\uZZZZ",        // not hex
      "\\ud83d",        // lone high surrogate at the end
      "\\ud83dx",       // high surrogate not followed by an escape
      "\\ud83d\\u0041", // high surrogate followed by a non-surrogate
      "\\ud83d\\ud83d", // two highs
      "\\ude00",        // lone low surrogate
      "a\"b",           // unescaped quote
      "a\x01" "b",      // raw control character
  };
  for (std::string_view m : malformed) {
    out = "junk";
    CHECK_EQ(UnescapeJsonString(m, &out), Status::kMalformedJson);
    CHECK(out.empty());
  }
  CHECK_EQ(UnescapeJsonString("\xED\xA0\x80", &out), Status::kInvalidUtf8);
  CHECK_EQ(UnescapeJsonString("\xC3", &out), Status::kInvalidUtf8);
  CHECK_EQ(UnescapeJsonString("x", nullptr), Status::kInvalidArgument);
}

JSON_TEST(DuplicateKeyLastOneWins) {
  Result r = ExtractAll("{\"key\":\"first\",\"x\":1,\"key\":{\"second\":2}}", {"key"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.views[0].type, JsonType::kObject);
  CHECK_EQ(r.Text(0), std::string_view("{\"second\":2}"));
}

JSON_TEST(ANameListedTwiceFillsBothSlots) {
  Result r = ExtractAll("{\"a\":7}", {"a", "b", "a"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.Text(0), std::string_view("7"));
  CHECK_EQ(r.views[1].type, JsonType::kMissing);
  CHECK_EQ(r.Text(2), std::string_view("7"));
}

JSON_TEST(KeysAreComparedRaw) {
  // "\u0073ubject" unescapes to "subject" but is spelled differently.
  Result r = ExtractAll("{\"\\u0073ubject\":\"escaped\",\"subject\":\"plain\",\"\":\"empty\"}",
                        {"subject", "\\u0073ubject", ""});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.Text(0), std::string_view("plain"));
  CHECK_EQ(r.Text(1), std::string_view("escaped"));
  CHECK_EQ(r.Text(2), std::string_view("empty"));
}

JSON_TEST(WhitespaceIsNotPartOfAnySpan) {
  const std::string_view json =
      " \n\t{ \"subject\" :  \"x\"  ,\r\n \"n\" : 12 , \"o\" : { \"k\" : [ ] } ,"
      " \"a\" : [ 1 , 2 ] , \"t\" : true\t}\r\n ";
  Result r = ExtractAll(json, {"subject", "n", "o", "a", "t"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.Text(0), std::string_view("x"));
  CHECK_EQ(r.Text(1), std::string_view("12"));
  CHECK_EQ(r.Text(2), std::string_view("{ \"k\" : [ ] }"));
  CHECK_EQ(r.Text(3), std::string_view("[ 1 , 2 ]"));
  CHECK_EQ(r.Text(4), std::string_view("true"));
}

JSON_TEST(LeadingByteOrderMarkIsSkipped) {
  Result r = ExtractAll("\xEF\xBB\xBF{\"a\":1}", {"a"});
  CHECK_EQ(r.status, Status::kOk);
  CHECK_EQ(r.views[0].offset, 8u);
  CHECK_EQ(r.Text(0), std::string_view("1"));
}

JSON_TEST(PaddedAndUnpaddedInputsGiveOffsetsIntoTheCallersBytes) {
  FieldExtractor ex;
  for (Pad pad : {Pad::kPadded, Pad::kExact, Pad::kShort}) {
    Result r = Extract(ex, kEvent, {"subject", "data"}, pad);
    CHECK_EQ(r.status, Status::kOk);
    CHECK_EQ(r.Text(0), std::string_view("orders.eu.created"));
    CHECK_EQ(r.views[1].type, JsonType::kObject);
    CHECK_EQ(r.json[r.views[1].offset], '{');
    CHECK_EQ(r.json[r.views[1].offset + r.views[1].length - 1], '}');
  }
}

JSON_TEST(OneExtractorServesManyDocumentsOfAnySize) {
  FieldExtractor ex;
  std::string big = "{\"pad\":\"" + std::string(100000, 'x') + "\",\"subject\":\"big\"}";
  for (int round = 0; round < 3; ++round) {
    Result r = Extract(ex, big, {"subject"}, Pad::kExact);
    CHECK_EQ(r.status, Status::kOk);
    CHECK_EQ(r.Text(0), std::string_view("big"));
    r = Extract(ex, "{\"subject\":", {"subject"}, Pad::kExact);
    CHECK_EQ(r.status, Status::kTruncatedJson);
    r = Extract(ex, "{\"subject\":\"small\"}", {"subject"}, Pad::kShort);
    CHECK_EQ(r.status, Status::kOk);
    CHECK_EQ(r.Text(0), std::string_view("small"));
  }
}

JSON_TEST(ExtractorNoticesAnImplementationSwitch) {
  FieldExtractor ex;
  const std::string before = JsonImplementation();
  Result r = Extract(ex, kEvent, {"key"});
  CHECK_EQ(r.Text(0), std::string_view("u-42"));
  {
    FallbackScope scope;
    r = Extract(ex, kEvent, {"key"});
    CHECK_EQ(r.status, Status::kOk);
    CHECK_EQ(r.Text(0), std::string_view("u-42"));
    // Only the whole-input UTF-8 pass catches this under fallback: the bad byte
    // sits in a skipped array, outside any string.
    r = Extract(ex, "{\"d\":[1,\xFF],\"key\":1}", {"key"});
    CHECK_EQ(r.status, Status::kInvalidUtf8);
  }
  CHECK_EQ(std::string(JsonImplementation()), before);
  r = Extract(ex, kEvent, {"key"});
  CHECK_EQ(r.Text(0), std::string_view("u-42"));
}

// --- the documented limit of On-Demand validation ------------------------------------

JSON_TEST(NestedContentIsCheckedOnlyForStructure) {
  // Pinned on purpose (see field_extractor.h): a skipped container's tokens are not
  // parsed, while the same mistake at the top level is caught.
  CHECK_EQ(StatusOf("{\"d\":[tru,01],\"a\":1}"), Status::kOk);
  CHECK_EQ(StatusOf("{\"a\":[1 2]}"), Status::kOk);  // returned, still not parsed
  CHECK_EQ(StatusOf("{\"d\":[1}}"), Status::kOk);   // bracket kinds are not matched...
  CHECK_EQ(StatusOf("{\"a\":[1}}"), Status::kMalformedJson);  // ...except a returned span's
  CHECK_EQ(StatusOf("{\"d\":tru,\"a\":1}"), Status::kMalformedJson);
  CHECK_EQ(StatusOf("{\"d\":01,\"a\":1}"), Status::kMalformedJson);
  CHECK_EQ(ValidateJsonObject(reinterpret_cast<const uint8_t*>("{\"d\":[tru]}"), 11),
           Status::kMalformedJson);
}

// --- bad input ---------------------------------------------------------------------

JSON_TEST(MalformedInputs) {
  const std::string_view cases[] = {
      "{\"a\":}",             "{a:1}",           "{\"a\":1,}",        "{\"a\":1} x",
      "{\"a\":1}}",           "{\"a\":1}{}",     "{\"a\" 1}",         "{\"a\":1 \"b\":2}",
      "{\"a\":1,,\"b\":2}",   "{,}",             "{:1}",              "{\"a\"::1}",
      "{\"a\":tru}",          "{\"a\":truex}",   "{\"a\":nul}",       "{\"a\":01}",
      "{\"a\":1.}",           "{\"a\":-}",       "{\"a\":1e}",        "{\"a\":+1}",
      "{\"a\":.5}",           "{\"a\":1x}",      "{\"a\":\"\\x\"}",   "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\udc00x\"}", "{\"\\q\":1}",     "{\"a\":[1,2}",      "{\"a\":{\"b\":1]}",
      "{\"a\":\"x\x01y\"}",   "{\"d\":{\"x\":\"\x1F\"}}", std::string_view("{\"a\":1}\0", 8), "x",
      "}",                    "{\"a\":'x'}",     "{\"a\":NaN}",
      // a string value followed by ':' must not read as a key (fuzzer find)
      "{\"a\":\"x\":1}}", "{\"b\":\"x\":1}}", "{\"b\":\"x\":\"y\",\"c\":2}}",
  };
  for (std::string_view c : cases) {
    const Status s = StatusOf(c);
    if (s != Status::kMalformedJson) {
      std::fprintf(stderr, "    input: %.*s\n", static_cast<int>(c.size()), c.data());
    }
    CHECK_EQ(s, Status::kMalformedJson);
  }
}

JSON_TEST(NonObjectsAreRejected) {
  const std::string_view cases[] = {"[1,2]", "\"str\"", "123", "-1", "true", "null",
                                    " [1,2", "\"abc", "[]"};
  for (std::string_view c : cases) CHECK_EQ(StatusOf(c), Status::kNotAnObject);
}

JSON_TEST(TruncatedInputs) {
  const std::string_view cases[] = {"",           "   ",          "{",
                                    "{\"a\"",     "{\"a\":",      "{\"a\":1",
                                    "{\"a\":\"x", "{\"a\":{\"b\":1}", "{\"a\":[",
                                    "{\"a\":\"\\u12", "{\"a\":\"\\ud83d", "{\"a\":tr",
                                    "{\"a\":1.5e", "\xEF\xBB\xBF{"};
  for (std::string_view c : cases) CHECK_EQ(StatusOf(c), Status::kTruncatedJson);
}

JSON_TEST(EveryPrefixOfARealEventIsTruncated) {
  FieldExtractor ex;
  for (size_t n = 0; n < kEvent.size(); ++n) {
    for (Pad pad : {Pad::kPadded, Pad::kExact}) {
      Result r = Extract(ex, kEvent.substr(0, n), {"subject", "key", "priority"}, pad);
      if (r.status != Status::kTruncatedJson) {
        std::fprintf(stderr, "    prefix length %zu\n", n);
      }
      CHECK_EQ(r.status, Status::kTruncatedJson);
      CheckAllMissing(r);
    }
  }
  CHECK_EQ(Extract(ex, kEvent, {"subject"}).status, Status::kOk);
}

JSON_TEST(InvalidUtf8AnywhereIsRejected) {
  const std::string_view bad[] = {
      "\xC0\xAF",          // overlong '/'
      "\xE0\x80\xAF",      // overlong, 3 bytes
      "\x80",              // lone continuation byte
      "\xED\xA0\x80",      // UTF-16 surrogate encoded in UTF-8
      "\xE2\x82",          // truncated multi-byte character
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xF8\x88\x80\x80\x80", "\xFF",
  };
  for (std::string_view b : bad) {
    const std::string s(b);
    CHECK_EQ(StatusOf("{\"a\":\"x" + s + "y\"}"), Status::kInvalidUtf8);       // value
    CHECK_EQ(StatusOf("{\"k" + s + "\":1}"), Status::kInvalidUtf8);            // key
    CHECK_EQ(StatusOf("{\"d\":{\"x\":[\"" + s + "\"]}}"), Status::kInvalidUtf8);  // skipped
    CHECK_EQ(StatusOf("{\"d\":[1," + s + "]}"), Status::kInvalidUtf8);  // outside strings
    CHECK_EQ(StatusOf("{\"a\":\"\\" + s + "\"}"), Status::kInvalidUtf8);  // after a backslash
  }
  // Invalid UTF-8 outranks every other complaint.
  CHECK_EQ(StatusOf("[\"\xFF\"]"), Status::kInvalidUtf8);
  CHECK_EQ(StatusOf("{\"a\":,\"\xFF\"}"), Status::kInvalidUtf8);
  // Valid non-ASCII outside a string is malformed, not bad UTF-8.
  CHECK_EQ(StatusOf("{\"a\":\xC3\xA9}"), Status::kMalformedJson);
}

JSON_TEST(EmptyInput) {
  FieldExtractor ex;
  const std::string_view names[] = {"a"};
  FieldView out[1];
  const uint8_t byte = '{';
  CHECK_EQ(ex.Extract(nullptr, 0, 0, names, 1, out), Status::kTruncatedJson);
  CHECK_EQ(ex.Extract(&byte, 0, 1, names, 1, out), Status::kTruncatedJson);
  CHECK_EQ(out[0].type, JsonType::kMissing);
}

JSON_TEST(BadArgumentsAreRejected) {
  FieldExtractor ex;
  const std::string json = "{\"a\":1}" + std::string(kJsonPadding, ' ');
  const auto* data = reinterpret_cast<const uint8_t*>(json.data());
  const size_t len = 7;
  std::string_view names[kMaxExtractFields + 1];
  for (size_t i = 0; i <= kMaxExtractFields; ++i) names[i] = "a";
  FieldView out[kMaxExtractFields + 1];
  CHECK_EQ(ex.Extract(data, len, json.size(), names, 0, out), Status::kInvalidArgument);
  CHECK_EQ(ex.Extract(data, len, json.size(), names, kMaxExtractFields + 1, out),
           Status::kInvalidArgument);
  CHECK_EQ(ex.Extract(data, len, json.size(), nullptr, 1, out), Status::kInvalidArgument);
  CHECK_EQ(ex.Extract(data, len, json.size(), names, 1, nullptr), Status::kInvalidArgument);
  CHECK_EQ(ex.Extract(nullptr, len, json.size(), names, 1, out), Status::kInvalidArgument);
  CHECK_EQ(ex.Extract(data, len, len - 1, names, 1, out), Status::kInvalidArgument);
  // Rejected on the length alone, before any byte is read.
  const size_t huge = size_t{1} << 32;
  CHECK_EQ(ex.Extract(data, huge, huge, names, 1, out), Status::kInvalidArgument);
  CHECK_EQ(out[0].type, JsonType::kMissing);
  // The maximum is accepted.
  CHECK_EQ(ex.Extract(data, len, json.size(), names, kMaxExtractFields, out), Status::kOk);
  CHECK_EQ(out[kMaxExtractFields - 1].length, 1u);
}

// --- batch -------------------------------------------------------------------------

JSON_TEST(BatchMixesGoodAndBadDocuments) {
  const std::string_view docs[] = {
      "{\"subject\":\"a.b\",\"key\":\"k1\"}",
      "{\"subject\":}",
      "{\"subject\":\"x\"",
      "[1]",
      "{\"key\":\"k\xFF\"}",
      "",
      " {\"key\":\"k5\", \"subject\":\"c.d\"} ",
  };
  constexpr size_t kDocs = sizeof(docs) / sizeof(docs[0]);
  std::string buf;
  std::vector<uint32_t> offsets, lengths;
  for (std::string_view d : docs) {
    buf += "\n";  // a separator the spans exclude
    offsets.push_back(static_cast<uint32_t>(buf.size()));
    lengths.push_back(static_cast<uint32_t>(d.size()));
    buf += d;
  }
  // One span past the end of buf, one overflowing offset + length.
  offsets.push_back(static_cast<uint32_t>(buf.size()) - 2);
  lengths.push_back(5);
  offsets.push_back(1);
  lengths.push_back(0xFFFFFFFFu);
  const size_t n = offsets.size();
  // Exact-size copy: the last document has no padding and must be copied.
  std::unique_ptr<uint8_t[]> bytes(new uint8_t[buf.size()]);
  std::memcpy(bytes.get(), buf.data(), buf.size());

  const std::string_view names[] = {"subject", "key"};
  std::vector<FieldView> out(n * 2);
  std::vector<Status> statuses(n, Status::kInternal);
  FieldExtractor ex;
  CHECK_EQ(ex.ExtractBatch(bytes.get(), buf.size(), offsets.data(), lengths.data(), n, names, 2,
                           out.data(), statuses.data()),
           Status::kOk);
  const Status want[] = {Status::kOk,         Status::kMalformedJson, Status::kTruncatedJson,
                         Status::kNotAnObject, Status::kInvalidUtf8,  Status::kTruncatedJson,
                         Status::kOk,         Status::kInvalidArgument, Status::kInvalidArgument};
  for (size_t d = 0; d < n; ++d) CHECK_EQ(statuses[d], want[d]);
  auto text = [&](size_t d, size_t i) {
    return std::string_view(buf).substr(out[d * 2 + i].offset, out[d * 2 + i].length);
  };
  // Offsets are relative to buf, not to the document.
  CHECK_EQ(text(0, 0), std::string_view("a.b"));
  CHECK_EQ(text(0, 1), std::string_view("k1"));
  CHECK_EQ(text(6, 0), std::string_view("c.d"));
  CHECK_EQ(text(6, 1), std::string_view("k5"));
  for (size_t d = 1; d < 6; ++d) {
    CHECK_EQ(out[d * 2].type, JsonType::kMissing);
    CHECK_EQ(out[d * 2 + 1].type, JsonType::kMissing);
  }
  // The batch agrees with one Extract per document.
  for (size_t d = 0; d < kDocs; ++d) {
    Result single = Extract(ex, docs[d], {"subject", "key"}, Pad::kExact);
    CHECK_EQ(single.status, statuses[d]);
    for (size_t i = 0; i < 2; ++i) {
      CHECK_EQ(single.views[i].type, out[d * 2 + i].type);
      if (single.views[i].type != JsonType::kMissing) {
        CHECK_EQ(single.views[i].offset + offsets[d], out[d * 2 + i].offset);
      }
    }
  }
}

JSON_TEST(BatchRejectsBadArguments) {
  FieldExtractor ex;
  const std::string buf = "{\"a\":1}";
  const auto* bytes = reinterpret_cast<const uint8_t*>(buf.data());
  const uint32_t off = 0, len = 7;
  const std::string_view names[] = {"a"};
  FieldView out[1];
  Status st[1] = {Status::kInternal};
  CHECK_EQ(ex.ExtractBatch(bytes, 7, &off, &len, 1, nullptr, 1, out, st),
           Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(bytes, 7, &off, &len, 1, names, 0, out, st), Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(bytes, 7, nullptr, &len, 1, names, 1, out, st),
           Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(bytes, 7, &off, nullptr, 1, names, 1, out, st),
           Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(bytes, 7, &off, &len, 1, names, 1, nullptr, st),
           Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(bytes, 7, &off, &len, 1, names, 1, out, nullptr),
           Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(nullptr, 7, &off, &len, 1, names, 1, out, st),
           Status::kInvalidArgument);
  CHECK_EQ(ex.ExtractBatch(bytes, size_t{1} << 32, &off, &len, 1, names, 1, out, st),
           Status::kInvalidArgument);
  CHECK_EQ(st[0], Status::kInternal);  // nothing written on a failed call
  CHECK_EQ(ex.ExtractBatch(bytes, 7, nullptr, nullptr, 0, names, 1, nullptr, nullptr),
           Status::kOk);
  CHECK_EQ(ex.ExtractBatch(bytes, 7, &off, &len, 1, names, 1, out, st), Status::kOk);
  CHECK_EQ(st[0], Status::kOk);
  CHECK_EQ(out[0].offset, 5u);
}

// --- the reference validator and implementation choice -------------------------------

JSON_TEST(ValidatorAcceptsValidObjectsAndLimitsDepth) {
  const std::string_view valid[] = {
      "{}", " {\"a\":[]} ", "{\"a\":[{},[],\"\",0,-0,0.5,1E5,-1e-5,2.5E+3,true,false,null]}",
      "{\"\\ud83d\\ude00\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\"}",
  };
  for (std::string_view v : valid) {
    CHECK_EQ(ValidateJsonObject(reinterpret_cast<const uint8_t*>(v.data()), v.size()),
             Status::kOk);
    CHECK_EQ(StatusOf(v), Status::kOk);
  }
  auto nested = [](size_t depth) {
    std::string s = "{\"a\":";
    for (size_t i = 1; i < depth; ++i) s += "[";
    s += "1";
    for (size_t i = 1; i < depth; ++i) s += "]";
    return s + "}";
  };
  const std::string ok = nested(1024), deep = nested(1025);
  CHECK_EQ(ValidateJsonObject(reinterpret_cast<const uint8_t*>(ok.data()), ok.size()),
           Status::kOk);
  CHECK_EQ(StatusOf(ok), Status::kOk);
  CHECK_EQ(ValidateJsonObject(reinterpret_cast<const uint8_t*>(deep.data()), deep.size()),
           Status::kMalformedJson);
  CHECK_EQ(ValidateJsonObject(nullptr, 1), Status::kInvalidArgument);
  CHECK_EQ(ValidateJsonObject(nullptr, 0), Status::kTruncatedJson);
}

// ValidateValue: the full parse the gateway runs on nested `data` values that
// Extract only skipped.
JSON_TEST(ValidateValueChecksNestedValues) {
  FieldExtractor ex;
  auto v = [&](const char* s) { return ex.ValidateValue(reinterpret_cast<const uint8_t*>(s), std::strlen(s)); };
  CHECK_EQ(v("{\"a\":[1,2,{\"b\":null}]}"), Status::kOk);
  CHECK_EQ(v("[true,false,\"x\",-1.5e3]"), Status::kOk);
  CHECK_EQ(v("\"str\""), Status::kOk);
  CHECK_EQ(v("42"), Status::kOk);
  CHECK_EQ(v("null"), Status::kOk);
  // What Extract lets through inside a skipped value:
  CHECK_EQ(v("[tru]"), Status::kMalformedJson);
  CHECK_EQ(v("[1}"), Status::kMalformedJson);
  CHECK_EQ(v("{\"d\":[1,}"), Status::kMalformedJson);
  CHECK_EQ(v("{\"a\":1} x"), Status::kMalformedJson);
  CHECK_EQ(v("[\"\\ud800\"]"), Status::kMalformedJson);  // lone surrogate escape
  CHECK_EQ(v(""), Status::kTruncatedJson);
  const uint8_t bad_utf8[] = {'[', '"', 0xff, '"', ']'};
  CHECK_EQ(ex.ValidateValue(bad_utf8, sizeof bad_utf8), Status::kInvalidUtf8);
  CHECK_EQ(ex.ValidateValue(nullptr, 3), Status::kInvalidArgument);
  // Agrees with the strict reference on objects.
  for (const char* doc : {"{\"a\":{\"b\":[1,2,3]}}", "{\"a\":[1,2", "{\"a\":[01]}", "{\"k\":\"\\u0041\"}"}) {
    const bool ok = v(doc) == Status::kOk;
    const bool ref = ValidateJsonObject(reinterpret_cast<const uint8_t*>(doc), std::strlen(doc)) == Status::kOk;
    CHECK_EQ(ok, ref);
  }
}

TEST(ImplementationCanBeChosenAndRestored) {
  const std::string before = JsonImplementation();
  std::fprintf(stderr, "    simdjson implementation: %s\n", before.c_str());
  CHECK(before != "unknown" && before != "unsupported");
  CHECK_EQ(SetJsonImplementation("no-such-kernel"), Status::kUnsupported);
  CHECK_EQ(SetJsonImplementation("unsupported"), Status::kUnsupported);
  CHECK_EQ(SetJsonImplementation(""), Status::kUnsupported);
  CHECK_EQ(std::string(JsonImplementation()), before);
  CHECK_EQ(SetJsonImplementation("fallback"), Status::kOk);
  CHECK_EQ(std::string(JsonImplementation()), std::string("fallback"));
  CHECK_EQ(SetJsonImplementation(before), Status::kOk);
  CHECK_EQ(std::string(JsonImplementation()), before);
}

}  // namespace myelin
