// `clonefs mount` under a supervisor (fuse/supervisor.h): the process that runs this holds the
// FUSE connection; the clone is served by the processes it forks.
#pragma once

#include <functional>
#include <string>

#include "serve_clone.h"

namespace clonefs::cli {

// `report` is called once, in the supervisor (as ServeOptions::report). `log_file` (detached
// daemons; "" in the foreground) receives each serving process's stderr once it is ready, as the
// supervisor's own. `report_fd` (detached daemons; -1 in the foreground), the pipe `report` writes
// to, is closed in the serving processes. Returns the mount's exit code.
int serve_supervised(const CloneServeOptions& options, unsigned restart_limit,
                     const std::string& log_file, int report_fd,
                     std::function<void(const Status&)> report);

}  // namespace clonefs::cli
