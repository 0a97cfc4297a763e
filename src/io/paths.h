// Paths as clonefs keeps them.
#pragma once

#include <string>

namespace clonefs {

// `path` made absolute against the working directory, `..` and symlinks left for the kernel: a
// lexical `..` would be wrong after a symlinked directory (`link/../x` is not `x` beside `link`),
// and resolving symlinks would trade a stable name (/dev/vg0/golden) for one that can change
// across boots (/dev/dm-3). `path` unchanged if the working directory cannot be read.
std::string absolute_path(const std::string& path);

}  // namespace clonefs
