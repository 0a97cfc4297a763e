#include "app.h"

int main(int argc, char** argv) { return clonefs::cli::run(argc, argv); }
