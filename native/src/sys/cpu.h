// CPU topology and thread pinning for native threads.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace myelin {

struct CpuInfo {
  uint32_t online = 0;                // CPUs online in the system
  std::vector<uint32_t> allowed;      // CPUs this process may run on (affinity mask)
};

// Reads the online count and this process's affinity mask.
Status GetCpuInfo(CpuInfo* out) noexcept;

// Pins the calling thread to one CPU. kInvalidArgument when cpu is not in the
// allowed set, kUnsupported where the platform has no affinity call, and
// kPermissionDenied when the kernel refuses (a cgroup or seccomp policy).
Status PinCurrentThread(uint32_t cpu) noexcept;

// The CPU the calling thread runs on now, or -1 where unknown.
int CurrentCpu() noexcept;

// Clears the calling thread's pin back to the whole allowed set.
Status UnpinCurrentThread() noexcept;

}  // namespace myelin
