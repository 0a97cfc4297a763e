#include "fuse/predecessors.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "engine/surviving_regions.h"
#include "fuse/supervisor_channel.h"

namespace clonefs {
namespace {

// The first serving process of a supervised mount, before anything is written: a description
// of the destination for the supervisor to hold (Supervision::destination_witness_fd). Opened
// through the descriptor the engine writes with, so it is that very file even if its name was
// replaced since (the path only for a destination with no descriptor, which the binary has not).
Status hand_over_destination_witness(const Supervision& supervision, Clone& clone) {
  const int written_through = clone.destination().file_descriptor();
  const std::string path = written_through >= 0 ? "/proc/self/fd/" + std::to_string(written_through)
                                                : clone.record().destination_path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "destination " + path);
  Status sent = send_destination_witness(supervision.channel, fd);
  ::close(fd);
  return sent;
}

}  // namespace

Status adopt_surviving_regions(const Supervision* supervision, Clone& clone, spdlog::logger& log) {
  if (supervision == nullptr || supervision->surviving_regions_fd < 0) return Status::ok();
  auto surviving =
      SurvivingRegions::map(supervision->surviving_regions_fd, clone.engine().geometry());
  if (!surviving) return surviving.status();
  // The supervisor confirms a predecessor's syncs before it starts a successor (and spoils the
  // record if it cannot): the first one hands over what it confirms them with.
  if (!supervision->connection)
    CLONEFS_RETURN_IF_ERROR(hand_over_destination_witness(*supervision, clone));
  const uint64_t adopted = clone.engine().adopt_surviving(std::move(*surviving));
  if (adopted != 0)
    log.info("{} regions the previous serving process made valid are valid again", adopted);
  return Status::ok();
}

}  // namespace clonefs
