#include "io/copy_method.h"

namespace clonefs {

const char* to_string(CopyMethod method) {
  switch (method) {
    case CopyMethod::kReadWrite:
      return "read-write";
    case CopyMethod::kCopyFileRange:
      return "copy_file_range";
    case CopyMethod::kReflink:
      return "reflink";
  }
  return "read-write";
}

std::optional<CopyMethod> copy_method_from_string(std::string_view name) {
  for (CopyMethod m : {CopyMethod::kReadWrite, CopyMethod::kCopyFileRange, CopyMethod::kReflink})
    if (name == to_string(m)) return m;
  return std::nullopt;
}

}  // namespace clonefs
