#include "supervised_serve.h"

#include <fcntl.h>
#include <unistd.h>

#include "fuse/mount_start.h"
#include "fuse/supervisor.h"
#include "fuse/supervisor_channel.h"
#include "log_file.h"

namespace clonefs::cli {

int serve_supervised(const CloneServeOptions& options, unsigned restart_limit,
                     const std::string& log_file, int report_fd,
                     std::function<void(const Status&)> report) {
  const ServeOptions& image = options.image;
  SuperviseOptions supervise_options;
  supervise_options.image_path = image.image_path;
  supervise_options.restart_limit = restart_limit;
  supervise_options.logger = image.logger;
  supervise_options.report = std::move(report);
  if (report_fd >= 0) supervise_options.supervisor_only_fds.push_back(report_fd);
  supervise_options.start_mount = [&image](uint64_t image_size) {
    return start_mount(image, image_size);
  };
  if (image.writeback_cache) {
    supervise_options.pin_size = [&image](uint64_t image_size) {
      return pin_image_size(image.image_path, image_size);
    };
  }
  supervise_options.serve = [&options, &log_file](const Supervision& supervision) {
    CloneServeOptions serving = options;
    serving.image.supervision = &supervision;
    serving.image.report = [&](const Status& status) {
      if (Status sent = send_report(supervision.channel, status); !sent)
        options.image.logger->error("{}", sent.message());
      if (!status || log_file.empty()) return;
      if (Status redirected = redirect_stderr_to_log(log_file); !redirected)
        options.image.logger->warn("{}", redirected.message());
    };
    return serve_clone(serving);
  };
  return supervise(supervise_options);
}

}  // namespace clonefs::cli
