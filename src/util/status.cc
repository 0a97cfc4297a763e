#include "util/status.h"

#include <cstring>

namespace clonefs {

Status Status::from_errno(int err, const std::string& context) {
  return Status::error(err, context + ": " + std::strerror(err));
}

Status Status::with_context(const std::string& outer) const {
  if (is_ok()) return *this;
  return Status(code_, outer + ": " + message_);
}

}  // namespace clonefs
