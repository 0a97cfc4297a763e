// clonefs status: live figures from a mounted IMAGE's daemon, or the last committed state read
// from a metadata file (or from an unmounted image that remembers its metadata).
#include <sys/stat.h>

#include "app.h"
#include "control/control_client.h"
#include "control/control_protocol.h"
#include "control/status_prometheus.h"
#include "control/status_table.h"
#include "daemon/status_report.h"
#include "io/trusted_file.h"

namespace clonefs::cli {
namespace {

struct StatusArgs {
  std::string target;
  bool json = false;
  bool prometheus = false;
};

// The metadata path an unmounted image was last served from, if its file system kept the xattr.
// Only from an image the caller owns (as root: root's or the invoking user's): another user sets
// the xattr of their own file to whatever they like, and would choose what root opens.
std::optional<std::string> remembered_metadata(const std::string& image) {
  return read_trusted_xattr(image, kMetadataXattr, current_trust_policy());
}

Result<CloneStatus> status_of(const std::string& target) {
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0 && errno != ENOTCONN)
    return Status::from_errno(errno, target);
  auto live = live_status_of(target);
  if (live) return live;
  int code = live.status().code();
  if (code != ENOTTY) return live.status();
  if (auto metadata = remembered_metadata(target); metadata) return offline_status(*metadata);
  return offline_status(target);
}

int run_status(const StatusArgs& args) {
  auto status = status_of(args.target);
  if (!status) return fail(status.status());
  if (args.json) {
    std::printf("%s\n", nlohmann::json(*status).dump(2).c_str());
  } else if (args.prometheus) {
    std::printf("%s", format_status_prometheus(*status).c_str());
  } else {
    std::printf("%s", format_status_table(*status).c_str());
  }
  return 0;
}

}  // namespace

Command add_status_command(CLI::App& root) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* app = root.add_subcommand("status",
                                      "Show a clone's progress: live from a mounted IMAGE, or as "
                                      "last committed from its METADATA.");
  app->add_option("TARGET", args->target, "A mounted IMAGE, or a METADATA file")->required();
  auto* json = app->add_flag("--json", args->json,
                             "Print one JSON object (field names are stable; see README)");
  app->add_flag("--prometheus", args->prometheus,
                "Print Prometheus text exposition format (clonefs_* gauges and counters)")
      ->excludes(json);
  return {app, [args] { return run_status(*args); }};
}

}  // namespace clonefs::cli
