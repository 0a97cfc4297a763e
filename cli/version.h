// What `clonefs --version` prints: the release and the commit this binary was built from, so a
// report from a user names the exact sources. Defined in a file generated at build time
// (cmake/write_version.cmake).
#pragma once

#include <string>

namespace clonefs::cli {

extern const char* const kVersion;  // the project's version (CMakeLists.txt)
extern const char* const kCommit;   // `git describe --always --dirty`, or "unknown"

// "clonefs 0.1.0 (commit b66b03a-dirty)"
inline std::string version_text() {
  return std::string("clonefs ") + kVersion + " (commit " + kCommit + ")";
}

}  // namespace clonefs::cli
