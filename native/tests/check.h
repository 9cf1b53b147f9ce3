// A minimal test harness for the native unit tests: TEST registers a case, CHECK and
// CHECK_EQ record failures without stopping the case, main() runs every case and ends
// with the plain "N passed, N failed" line. Each native/tests/*_test.cc is one binary
// that ctest runs (CMakeLists.txt), plain and under the sanitizers.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace myelin::test {

// Sanitized builds run smaller counts (GCC defines __SANITIZE_*, clang has __has_feature).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
inline constexpr bool kSanitized = __has_feature(thread_sanitizer) || __has_feature(address_sanitizer);
#else
inline constexpr bool kSanitized = false;
#endif

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& Registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& Failures() {
  static int failures = 0;
  return failures;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { Registry().push_back({name, fn}); }
};

inline void Fail(const char* file, int line, const std::string& what) {
  ++Failures();
  std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

template <typename T>
std::string Show(const T& v) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    return "\"" + std::string(v) + "\"";
  } else if constexpr (std::is_convertible_v<T, const char*>) {
    return v ? std::string("\"") + v + "\"" : "null";
  } else if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<long long>(v));
  } else if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(v);
  } else {
    return "<value>";
  }
}

}  // namespace myelin::test

#define MYELIN_CAT2(a, b) a##b
#define MYELIN_CAT(a, b) MYELIN_CAT2(a, b)

#define TEST(name)                                                               \
  static void name();                                                            \
  static ::myelin::test::Registrar MYELIN_CAT(reg_, name)(#name, &name);         \
  static void name()

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) ::myelin::test::Fail(__FILE__, __LINE__, "CHECK(" #cond ")");   \
  } while (0)

#define CHECK_EQ(a, b)                                                           \
  do {                                                                           \
    const auto& _va = (a);                                                       \
    const auto& _vb = (b);                                                       \
    if (!(_va == _vb))                                                           \
      ::myelin::test::Fail(__FILE__, __LINE__,                                   \
                           "CHECK_EQ(" #a ", " #b "): " +                        \
                               ::myelin::test::Show(_va) + " != " +              \
                               ::myelin::test::Show(_vb));                       \
  } while (0)

// Define MYELIN_TEST_MAIN in exactly one translation unit per test binary (each
// *_test.cc is its own binary, so each defines it).
#ifdef MYELIN_TEST_MAIN
int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const auto& c : ::myelin::test::Registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    const int before = ::myelin::test::Failures();
    std::fprintf(stderr, "[ RUN  ] %s\n", c.name);
    c.fn();
    if (::myelin::test::Failures() == before) {
      ++passed;
      std::fprintf(stderr, "[  OK  ] %s\n", c.name);
    } else {
      ++failed;
      std::fprintf(stderr, "[ FAIL ] %s\n", c.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
#endif
