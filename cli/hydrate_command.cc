// clonefs hydrate: steer a mount's background hydration, and optionally wait for it to finish.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "app.h"
#include "control/control_client.h"
#include "control/control_protocol.h"
#include "control/units.h"
#include "hydration_flags.h"
#include "hydration_plan.h"

namespace clonefs::cli {
namespace {

struct HydrateArgs {
  std::string image;
  HydrationFlags flags;
  bool pause = false, resume = false, wait = false;
  std::string profile;             // --profile
  std::vector<std::string> files;  // --files
};

// What --wait reads from each status poll.
struct Progress {
  uint64_t valid = 0, total = 0, bytes_valid = 0, image_size = 0, failed = 0;
  double rate = 0, eta = -1;
  bool paused = false, complete = false;
  std::string mode, mode_reason;
};

Progress progress_of(const CloneStatus& s) {
  Progress p{.valid = s.regions_valid,
             .total = s.regions_total,
             .bytes_valid = s.bytes_valid,
             .image_size = s.image_size,
             .complete = s.complete,
             .mode = s.metadata_mode,
             .mode_reason = s.metadata_mode_reason};
  if (s.hydration) {
    p.failed = s.hydration->failed_regions;
    p.rate = s.hydration->rate_bytes_per_s;
    p.paused = s.hydration->controls.paused;
    p.eta = s.hydration->eta_seconds.value_or(-1);  // format_duration's "unknown"
  }
  return p;
}

std::string progress_text(const Progress& p, bool bar) {
  double fraction = p.total ? static_cast<double>(p.valid) / static_cast<double>(p.total) : 1.0;
  char percent[16];
  std::snprintf(percent, sizeof percent, "%5.1f%%", 100 * fraction);
  std::string text;
  if (bar) {
    constexpr int kWidth = 30;
    int filled = static_cast<int>(std::floor(fraction * kWidth));
    text = "[" + std::string(static_cast<size_t>(filled), '#') +
           std::string(static_cast<size_t>(kWidth - filled), '.') + "] ";
  }
  text += std::string(percent) + "  " + format_bytes(p.bytes_valid) + " / " +
          format_bytes(p.image_size) + "  " + format_bytes(static_cast<uint64_t>(p.rate)) +
          "/s  ETA " + format_duration(p.eta);
  if (p.paused) text += "  (paused)";
  return text;
}

// Why waiting cannot succeed, if it cannot.
std::optional<Status> hopeless(const Progress& p, const std::string& image) {
  if (p.mode != "rw") {
    return Status::error(EIO, "hydration of " + image + " stopped: metadata is " + p.mode + " (" +
                                  p.mode_reason + ")");
  }
  if (p.failed > 0 && p.valid + p.failed >= p.total) {
    return Status::error(EIO, std::to_string(p.failed) + " regions of " + image +
                                  " could not be read from the source (see 'clonefs status " +
                                  image + "'); every other region is hydrated");
  }
  return std::nullopt;
}

Status commit_image(const std::string& image) {
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, image);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    return Status::error(err, "committing the hydrated regions of " + image + " failed: " +
                                  std::strerror(err) + "; see 'clonefs status' and the log");
  return Status::ok();
}

int wait_for_hydration(const std::string& image) {
  const bool tty = ::isatty(STDOUT_FILENO);
  bool told_paused = false;
  auto last_line = std::chrono::steady_clock::now() - std::chrono::hours(1);
  for (bool waiting = false;; waiting = true) {
    auto status = live_status_of(image);
    if (!status && !waiting)
      return fail(status.status());  // never started: nothing to say of waiting
    if (!status) {
      if (tty) std::printf("\n");
      return fail(status.status().with_context("while waiting for hydration"));
    }
    Progress p = progress_of(*status);
    auto now = std::chrono::steady_clock::now();
    if (tty) {
      std::printf("\r%s\033[K", progress_text(p, true).c_str());
      std::fflush(stdout);
    } else if (p.complete || now - last_line >= std::chrono::seconds(2)) {
      std::printf("%s\n", progress_text(p, false).c_str());
      std::fflush(stdout);
      last_line = now;
    }
    if (p.complete) {
      if (tty) std::printf("\n");
      // Every region is valid in memory; an fsync commits the last of them, so that exit 0
      // means the hydration survives a crash from here on.
      if (Status committed = commit_image(image); !committed) return fail(committed);
      std::printf("%s is fully hydrated\n", image.c_str());
      return 0;
    }
    if (auto why = hopeless(p, image)) {
      if (tty) std::printf("\n");
      return fail(*why);
    }
    if (p.paused && !told_paused) {
      if (tty) std::printf("\n");
      warn("hydration is paused; waiting until it is resumed ('clonefs hydrate " + image +
           " --resume')");
      told_paused = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 200));
  }
}

int run_hydrate(const HydrateArgs& args) {
  // All checked before any is sent.
  auto checked = hydration_commands(args.flags);
  if (!checked) return usage_error(checked.status());
  std::vector<HydrateCommand> commands = std::move(*checked);
  if (args.pause) commands.push_back({HydrateCommand::Kind::kPause, 0});
  if (args.resume) commands.push_back({HydrateCommand::Kind::kResume, 0});
  // The plan before the controls: a --resume then starts with it.
  if (!args.profile.empty() || !args.files.empty()) {
    auto sent = args.profile.empty() ? send_files_plan(args.image, args.files)
                                     : send_profile_plan(args.image, args.profile);
    if (!sent) return fail(sent.status());
    std::printf("%s\n", sent->c_str());
  }
  for (const HydrateCommand& command : commands) {
    if (Status sent = send_hydrate_command(args.image, format_hydrate_command(command)); !sent) {
      return fail(sent);
    }
  }
  if (args.wait) return wait_for_hydration(args.image);
  auto status = live_status_of(args.image);
  if (!status) return fail(status.status());
  // The hydrator's controls; a live status always has them (hydration_settings are the same).
  const StatusControls& c =
      status->hydration ? status->hydration->controls : status->hydration_settings;
  std::string settings =
      "paused=" + std::string(c.paused ? "1" : "0") + " threshold=" + std::to_string(c.threshold) +
      " batch=" + std::to_string(c.batch) + " rate=" + std::to_string(c.rate_limit);
  std::printf("hydration of %s: %s\n", args.image.c_str(), settings.c_str());
  return 0;
}

}  // namespace

Command add_hydrate_command(CLI::App& root) {
  auto args = std::make_shared<HydrateArgs>();
  CLI::App* app = root.add_subcommand(
      "hydrate",
      "Steer background hydration of a mounted IMAGE; with no option, show its settings. The\n"
      "controls are saved in the metadata: the next mount starts with them.");
  app->add_option("IMAGE", args->image, "The mounted image")->required();
  auto* pause = app->add_flag("--pause", args->pause, "Pause background hydration");
  app->add_flag("--resume", args->resume, "Resume background hydration")->excludes(pause);
  add_hydration_flags(app, args->flags);
  auto* profile = app->add_option("--profile", args->profile,
                                  "Hydrate the regions of this access profile first, in its order "
                                  "(recorded by 'mount --record-profile'; docs/PROFILE.md)");
  app->add_option("--files", args->files,
                  "Hydrate the regions of these files first (directories: every file below), on "
                  "a filesystem mounted from a loop device over IMAGE")
      ->excludes(profile);
  app->add_flag("--wait", args->wait,
                "Wait until every region is valid, showing progress; fails if the daemon goes away "
                "or regions "
                "cannot be read from the source");
  return {app, [args] { return run_hydrate(*args); }};
}

}  // namespace clonefs::cli
