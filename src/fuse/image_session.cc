#include "fuse/image_session.h"

#include <unistd.h>

#include "daemon/status_report.h"

namespace clonefs {

ImageSession::ImageSession(Clone& clone, Hydrator& hydrator, std::shared_ptr<spdlog::logger> logger,
                           std::string image_path, std::string metadata_path,
                           ImageAttributes attributes, ConnectionChoices connection)
    : clone_(clone),
      hydrator_(hydrator),
      logger_(std::move(logger)),
      image_path_(std::move(image_path)),
      metadata_path_(std::move(metadata_path)),
      owner_uid_(::getuid()),
      pid_(::getpid()),
      connection_(connection),
      image_(clone.engine(), image_path_, attributes, {},
             connection.writeback_cache ? ImageFile::WritesReach::kKernelCacheFirst
                                        : ImageFile::WritesReach::kDaemonFirst),
      passthrough_({connection.passthrough, clone.destination().file_descriptor(), image_.size(),
                    connection.passthrough_ledger_fd, logger_.get()}) {}

bool ImageSession::hydrated_and_committed() {
  EngineStatus s = clone_.engine().status();
  if (s.mode != MetadataMode::kReadWrite || s.regions_valid != s.regions_total) return false;
  return s.transaction_regions == 0 || image_.sync().is_ok();
}

CloneStatus ImageSession::status() const {
  CloneStatus s = live_status({image_path_, metadata_path_, clone_.record(), clone_.engine(),
                               hydrator_, pid_, supervisor_pid_, restarts_, last_restart_});
  PassthroughState p = passthrough_.state();
  s.passthrough = StatusPassthrough{p.state,      p.reason,   p.passthrough_opens,
                                    p.fuse_opens, p.requests, spliced_reads_.count()};
  return s;
}

std::string ImageSession::status_json() const {
  // Serialised here, once, by the one to_json (control/status.h).
  return nlohmann::json(status()).dump();
}

}  // namespace clonefs
