// The detached daemon's log file (--log-file, default METADATA.log), opened only through
// io/safe_files.h: root appends to it, so a symlink, FIFO or hard link planted at its name is
// refused instead of followed.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "util/status.h"

namespace clonefs::cli {

// A logger named "clonefs" writing to the log file at `path` (opened once, here).
Result<std::shared_ptr<spdlog::logger>> log_file_logger(const std::string& path);

// Sends this process's stderr to the log file at `path` (libfuse's and the serving processes'
// own messages). Refused like the logger: stderr is then left as it is.
Status redirect_stderr_to_log(const std::string& path);

}  // namespace clonefs::cli
