#include "io/paths.h"

#include <filesystem>

namespace clonefs {

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.string();
}

}  // namespace clonefs
