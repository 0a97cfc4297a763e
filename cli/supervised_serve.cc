#include "supervised_serve.h"

#include <fcntl.h>
#include <unistd.h>

#include "fuse/mount_start.h"
#include "fuse/supervisor.h"
#include "fuse/supervisor_channel.h"
#include "log_file.h"

namespace clonefs::cli {

int serve_supervised(const ServeOptions& options, unsigned restart_limit,
                     const std::string& log_file, int report_fd,
                     std::function<void(const Status&)> report) {
  SuperviseOptions supervise_options;
  supervise_options.image_path = options.image_path;
  supervise_options.restart_limit = restart_limit;
  supervise_options.logger = options.logger;
  supervise_options.report = std::move(report);
  if (report_fd >= 0) supervise_options.supervisor_only_fds.push_back(report_fd);
  supervise_options.start_mount = [&options](uint64_t image_size) {
    return start_mount(options, image_size);
  };
  if (options.writeback_cache) {
    supervise_options.pin_size = [&options](uint64_t image_size) {
      return pin_image_size(options.image_path, image_size);
    };
  }
  supervise_options.serve = [&options, &log_file](const Supervision& supervision) {
    ServeOptions serving = options;
    serving.supervision = &supervision;
    serving.report = [&](const Status& status) {
      if (Status sent = send_report(supervision.channel, status); !sent)
        options.logger->error("{}", sent.message());
      if (!status || log_file.empty()) return;
      if (Status redirected = redirect_stderr_to_log(log_file); !redirected)
        options.logger->warn("{}", redirected.message());
    };
    return serve_image(serving);
  };
  return supervise(supervise_options);
}

}  // namespace clonefs::cli
