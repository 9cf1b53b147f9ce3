#include "sys/cpu.h"

#include <cerrno>
#include <new>

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif

namespace myelin {

#if defined(__linux__)

namespace {

Status FromErrno(int err) noexcept {
  switch (err) {
    case EINVAL:
      return Status::kInvalidArgument;
    case EPERM:
    case EACCES:
      return Status::kPermissionDenied;
    case ENOSYS:
      return Status::kUnsupported;
    default:
      return Status::kInternal;
  }
}

// The process-wide allowed set, read fresh: cgroups and taskset change it at run time.
Status AllowedSet(cpu_set_t* set) noexcept {
  CPU_ZERO(set);
  if (sched_getaffinity(0, sizeof(cpu_set_t), set) != 0) return FromErrno(errno);
  return Status::kOk;
}

}  // namespace

Status GetCpuInfo(CpuInfo* out) noexcept {
  if (!out) return Status::kInvalidArgument;
  try {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->online = n > 0 ? static_cast<uint32_t>(n) : 0;
    out->allowed.clear();
    cpu_set_t set;
    if (Status s = AllowedSet(&set); !Ok(s)) return s;
    for (uint32_t c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out->allowed.push_back(c);
    return Status::kOk;
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  }
}

Status PinCurrentThread(uint32_t cpu) noexcept {
  if (cpu >= CPU_SETSIZE) return Status::kInvalidArgument;
  cpu_set_t allowed;
  // sched_getaffinity(0) on Linux reads the calling thread's mask, which after an
  // earlier pin is one CPU; the process mask is what pinning may choose from.
  if (sched_getaffinity(getpid(), sizeof(cpu_set_t), &allowed) != 0) return FromErrno(errno);
  if (!CPU_ISSET(cpu, &allowed)) return Status::kInvalidArgument;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (sched_setaffinity(0, sizeof(cpu_set_t), &one) != 0) return FromErrno(errno);
  return Status::kOk;
}

Status UnpinCurrentThread() noexcept {
  cpu_set_t allowed;
  if (sched_getaffinity(getpid(), sizeof(cpu_set_t), &allowed) != 0) return FromErrno(errno);
  if (sched_setaffinity(0, sizeof(cpu_set_t), &allowed) != 0) return FromErrno(errno);
  return Status::kOk;
}

int CurrentCpu() noexcept { return sched_getcpu(); }

#else

Status GetCpuInfo(CpuInfo* out) noexcept {
  if (!out) return Status::kInvalidArgument;
  out->online = 0;
  out->allowed.clear();
  return Status::kUnsupported;
}
Status PinCurrentThread(uint32_t) noexcept { return Status::kUnsupported; }
Status UnpinCurrentThread() noexcept { return Status::kUnsupported; }
int CurrentCpu() noexcept { return -1; }

#endif

}  // namespace myelin
