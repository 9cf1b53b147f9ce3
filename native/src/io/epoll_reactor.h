// The epoll backend of Reactor (reactor.h). Private to native/src/io: callers go
// through Reactor::Create, which validates the options before calling this.
#pragma once

#include <memory>

#include "io/reactor.h"

namespace myelin::io {

// options are already validated; handler is not null.
Status CreateEpollReactor(const ReactorOptions& options, Handler* handler,
                          std::unique_ptr<Reactor>* out) noexcept;

}  // namespace myelin::io
