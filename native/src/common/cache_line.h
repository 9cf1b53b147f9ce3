// Cache-line size used for padding shared indices. 64 B on every x86-64 and most
// AArch64 parts; 128 on Apple M-series would only waste padding, never break.
#pragma once

#include <cstddef>

namespace myelin {

inline constexpr std::size_t kCacheLine = 64;

}  // namespace myelin
