// How hydration moves a range from the source into the destination. Chosen per clone at mount by
// trying (DestinationDevice::probe_copy), best first.
#pragma once

#include <optional>
#include <string_view>

namespace clonefs {

enum class CopyMethod {
  kReadWrite,      // through the engine's buffers; all-zero pieces are found and left sparse
  kCopyFileRange,  // copy_file_range(2): copied inside the kernel, no userspace buffers
  kReflink,        // FICLONERANGE: the destination shares the source's extents (copy on write)
};

// "read-write", "copy_file_range", "reflink": the status field's and the log's spelling.
const char* to_string(CopyMethod method);
std::optional<CopyMethod> copy_method_from_string(std::string_view name);

// The next method to try when `method` does not apply; kReadWrite always does.
inline CopyMethod fallback_of(CopyMethod method) {
  return method == CopyMethod::kReflink ? CopyMethod::kCopyFileRange : CopyMethod::kReadWrite;
}

}  // namespace clonefs
