#include <cstdio>
#include <exception>

#include "app.h"

// Nothing thrown below (std::bad_alloc from a size no check caught, a library's exception) ends
// the process with an abort and a core: it is one line and the failure exit code, like any error.
int main(int argc, char** argv) {
  try {
    return clonefs::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clonefs: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "clonefs: internal error: unknown exception\n");
  }
  return clonefs::cli::kExitError;
}
