// The one place binding code starts a native thread.
//
// std::thread's constructor throws std::system_error when the system refuses a thread
// (EAGAIN: RLIMIT_NPROC, a container's pids.max, no address space for a stack) and
// std::bad_alloc when it cannot allocate the thread's state. node-addon-api turns only
// Napi::Error into a JS exception, so either one escaping an entry point would reach
// std::terminate and take the host process down. StartThread turns them into
// ERR_RESOURCE_EXHAUSTED / ERR_OUT_OF_MEMORY MyelinErrors.
//
// Caller's duty: a std::thread that was started must be joined before the caller's
// exception unwinds past it (a joinable std::thread's destructor also terminates), and
// the container it goes into must have room reserved before the start, so that storing
// it cannot throw.
//
// In the test build (MYELIN_TEST_HOOKS) the environment's ThreadStartFaults make chosen
// starts fail exactly as a refused thread does (addon.failThreadStarts(n, after)).
#pragma once

#include <napi.h>

#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "addon.h"
#include "errors.h"

namespace myelin::binding {

template <typename F>
std::thread StartThread(Napi::Env env, const char* what, F&& body) {
  try {
#ifdef MYELIN_TEST_HOOKS
    if (AddonOf(env)->thread_start_faults.NextStartFails())
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                              "refused by failThreadStarts()");
#endif
    return std::thread(std::forward<F>(body));
  } catch (const std::system_error& e) {
    throw MakeError(env, Status::kResourceExhausted,
                    std::string(what) + ": the system refused a native thread (" + e.what() + ")");
  } catch (const std::bad_alloc&) {
    throw MakeError(env, Status::kOutOfMemory, std::string(what) + ": no memory to start a native thread");
  }
}

}  // namespace myelin::binding
