#include "common/status.h"

namespace myelin {

const char* StatusCode(Status s) noexcept {
  switch (s) {
#define MYELIN_STATUS_CODE(name, code, msg) \
  case Status::name:                        \
    return code;
    MYELIN_STATUS_LIST(MYELIN_STATUS_CODE)
#undef MYELIN_STATUS_CODE
  }
  return "ERR_INTERNAL";
}

const char* StatusMessage(Status s) noexcept {
  switch (s) {
#define MYELIN_STATUS_MSG(name, code, msg) \
  case Status::name:                       \
    return msg;
    MYELIN_STATUS_LIST(MYELIN_STATUS_MSG)
#undef MYELIN_STATUS_MSG
  }
  return "internal error";
}

}  // namespace myelin
