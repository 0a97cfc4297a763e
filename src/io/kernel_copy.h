// Copies between two open regular files inside the kernel: FICLONERANGE (the destination shares
// the source's extents) and copy_file_range(2). Both keep offsets equal in the two files, as
// hydration does.
#pragma once

#include <cstdint>
#include <string>

#include "io/copy_method.h"
#include "util/status.h"

namespace clonefs {

// The best method the two files allow, found by calls that change nothing: a clone and a copy of
// zero bytes at the source's end, which the kernel refuses with EOPNOTSUPP or EXDEV exactly when
// the real calls would be refused (other file system, no reflink support). kReadWrite if neither.
CopyMethod probe_kernel_copy(int source_fd, uint64_t source_size, int destination_fd);

// [offset, offset + length) of the destination afterwards reads what the source holds there.
// kReadWrite is not a kernel copy (EINVAL). Errors name both files and the range; EOPNOTSUPP,
// EXDEV and EINVAL say the method does not apply (to these files, or to this range: FICLONERANGE
// wants whole blocks except at the end of the source).
Status kernel_copy(CopyMethod method, int source_fd, const std::string& source_name,
                   int destination_fd, const std::string& destination_name, uint64_t offset,
                   uint64_t length);

// True if `failed` says the method cannot be used here rather than that the I/O failed.
bool method_does_not_apply(const Status& failed);

}  // namespace clonefs
