// clonefs mount: serve a clone as the regular file IMAGE. Detached by default: the parent forks
// before any thread exists, the child opens the clone (every check), mounts and reports "ready"
// or its error through a pipe; the parent exits 0 only once the mount is ready.
#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "app.h"
#include "control/control_client.h"
#include "fuse/held_image.h"
#include "fuse/readahead.h"
#include "hydration_flags.h"
#include "io/paths.h"
#include "io/safe_files.h"
#include "log_file.h"
#include "serve_clone.h"
#include "service_notify.h"
#include "supervised_serve.h"

namespace clonefs::cli {
namespace {

struct MountArgs {
  std::string metadata, image, log_level = "info", log_file, metrics_file;
  bool foreground = false, no_hydration = false, copy_on_read = false, no_copy_on_read = false;
  bool hydration = false;  // --hydration: resume a saved pause
  HydrationFlags controls;
  std::vector<HydrateCommand> hydration_controls;  // from the flags above, checked
  std::vector<std::string> fuse_options;
  std::string profile, record_profile;  // docs/PROFILE.md
  bool no_priority = false;
  double source_timeout = 30;  // seconds; NbdSourceOptions says why this default
  unsigned source_connections = NbdSourceOptions{}.connections;
  bool share_source = false;
  unsigned readahead_kib = kDefaultReadaheadKib;
  bool writeback_cache = false;
  bool no_passthrough = false;
  unsigned restart_limit = 10;  // 0: no supervisor
  std::string copy_method = "reflink";
};

// Lexically normal as well (no `.`, `..`): the daemon finds the image again by this name in the
// kernel's mount table (libmount), where the kernel writes it that way.
std::string absolute(const std::string& path) {
  return std::filesystem::path(absolute_path(path)).lexically_normal().string();
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0, end; start <= dirs.size(); start = end + 1) {
    end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (::access((dirs.substr(start, end - start) + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

Result<std::shared_ptr<spdlog::logger>> make_logger(const MountArgs& args) {
  std::shared_ptr<spdlog::logger> logger;
  if (args.foreground) {
    logger = spdlog::stderr_color_mt("clonefs");
  } else {
    auto file = log_file_logger(args.log_file);
    if (!file) return file.status();
    logger = std::move(*file);
  }
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] [%P:%t] %v");
  logger->set_level(spdlog::level::from_str(args.log_level));
  logger->flush_on(spdlog::level::info);  // a daemon's log must be current when someone reads it
  return logger;
}

// What the parent can check quickly, before forking, so obvious mistakes fail fast.
Status preflight(const MountArgs& args) {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    if (errno == EACCES && ::geteuid() != 0) {
      return Status::error(EACCES, "cannot mount " + args.image +
                                       ": /dev/fuse is not accessible to this user (run as "
                                       "root, or make /dev/fuse readable and writable for you)");
    }
    return Status::from_errno(errno,
                              "cannot mount " + args.image +
                                  ": /dev/fuse is missing or not accessible (load "
                                  "the fuse module, or give the container --device /dev/fuse)");
  }
  if (::geteuid() != 0 && !on_path("fusermount3")) {
    return Status::error(
        EPERM,
        "not running as root and fusermount3 is not installed (package fuse3): cannot mount " +
            args.image);
  }
  if (::access(args.metadata.c_str(), F_OK) != 0)
    return Status::from_errno(errno, "metadata " + args.metadata);
  CLONEFS_RETURN_IF_ERROR(check_image_path(args.image));
  if (!args.metrics_file.empty()) {
    std::string dir = std::filesystem::path(args.metrics_file).parent_path().string();
    // The file is replaced by rename: its directory, not the file, must be writable.
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      return Status::from_errno(errno, "metrics file " + args.metrics_file + ": directory " + dir);
  }
  if (!args.profile.empty() && ::access(args.profile.c_str(), R_OK) != 0)
    return Status::from_errno(errno, "profile " + args.profile);
  // The profile is written at unmount at the latest: a path it cannot be written to must fail
  // now, not then.
  if (!args.record_profile.empty()) {
    const std::string dir = std::filesystem::path(args.record_profile).parent_path().string();
    if (::access(dir.c_str(), W_OK) != 0) {
      return Status::from_errno(
          errno, "cannot record the profile " + args.record_profile + ": directory " + dir);
    }
  }
  if (!args.foreground) {
    // Created now (and checked: io/safe_files.h), so a log that cannot be used fails the command.
    auto fd = open_log_for_append(args.log_file, 0600);
    if (!fd) return fd.status();
  }
  return Status::ok();
}

Result<CloneServeOptions> serve_options(const MountArgs& args) {
  CloneServeOptions options;
  options.metadata_path = args.metadata;
  options.image.image_path = args.image;
  options.copy_on_read = args.copy_on_read && !args.no_copy_on_read;
  options.best_copy_method =
      copy_method_from_string(args.copy_method).value_or(CopyMethod::kReflink);
  options.hydration_controls = args.hydration_controls;
  options.image.fuse_options = args.fuse_options;
  options.profile_path = args.profile;
  options.record_profile_path = args.record_profile;
  options.on_demand_priority = !args.no_priority;
  options.image.metrics_file = args.metrics_file;
  options.nbd.read_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(args.source_timeout * 1000));
  options.nbd.connections = args.source_connections;
  options.nbd.share = args.share_source;
  options.image.readahead_kib = args.readahead_kib;
  options.image.writeback_cache = args.writeback_cache;
  options.image.passthrough = !args.no_passthrough;
  auto logger = make_logger(args);
  if (!logger) return logger.status();
  options.image.logger = std::move(*logger);
  return options;
}

int run_foreground(const MountArgs& args) {
  auto made = serve_options(args);
  if (!made) return fail(made.status());
  CloneServeOptions& options = *made;
  ServeOptions& image = options.image;
  image.report = [&](const Status& status) {
    if (!status) {
      fail(status);
      tell_service_manager_failed(status);
    } else {
      image.logger->info("ready: {} is mounted (Ctrl-C or 'clonefs unmount' to stop)", args.image);
      tell_service_manager_serving(args.image);
    }
  };
  if (args.restart_limit == 0) return serve_clone(options);
  return serve_supervised(options, args.restart_limit, "", -1, image.report);
}

// The detached daemon: new session, no terminal, cwd /; stderr kept until the mount is ready so
// libfuse's own messages reach the user, then sent to the log file.
int run_daemon_child(const MountArgs& args, int report_fd) {
  ::setsid();
  if (::chdir("/") != 0) return kExitError;
  int null_fd = ::open("/dev/null", O_RDWR);
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(null_fd, STDOUT_FILENO);
  ::close(null_fd);
  auto made = serve_options(args);
  if (!made) {
    const std::string& message = made.status().message();
    (void)!::write(report_fd, message.data(), message.size());
    return kExitError;
  }
  CloneServeOptions& options = *made;
  ServeOptions& image = options.image;
  image.report = [&](const Status& status) {
    std::string message = status ? "ready" : status.message();
    (void)!::write(report_fd, message.data(), message.size());
    ::close(report_fd);
    // libfuse's later messages go to the log; refused (something planted there since), they go
    // nowhere and the log says why.
    if (Status redirected = redirect_stderr_to_log(args.log_file); !redirected) {
      ::dup2(STDIN_FILENO, STDERR_FILENO);  // /dev/null
      image.logger->warn("{}", redirected.message());
    }
    if (!status) image.logger->error("mount failed: {}", status.message());
  };
  if (args.restart_limit == 0) return serve_clone(options);
  return serve_supervised(options, args.restart_limit, args.log_file, report_fd, image.report);
}

// A pause saved by an earlier mount or `clonefs hydrate` holds at this mount too; say so, or a
// plain mount that copies nothing looks broken.
void tell_saved_pause(const MountArgs& args) {
  if (args.no_hydration || args.hydration) return;
  auto status = live_status_of(args.image);
  if (!status || !status->hydration) return;
  if (status->hydration->controls.paused) {
    std::printf("hydration is paused, as it was saved ('clonefs hydrate %s --resume' starts it)\n",
                args.image.c_str());
  }
}

int run_detached(const MountArgs& args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(Status::from_errno(errno, "pipe"));
  std::fflush(nullptr);  // nothing buffered may be written twice
  pid_t child = ::fork();
  if (child < 0) return fail(Status::from_errno(errno, "fork"));
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::exit(run_daemon_child(args, pipe_fds[1]));
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) message.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (message == "ready") {
    std::printf("mounted %s (daemon pid %d, log %s)\n", args.image.c_str(), child,
                args.log_file.c_str());
    tell_saved_pause(args);
    return 0;
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (message.empty()) {
    message = "the mount daemon for " + args.image + " exited before the mount was ready (" +
              (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                   : "exit " + std::to_string(WEXITSTATUS(status))) +
              "); see " + args.log_file;
  }
  return fail(Status::error(EIO, message));
}

int run_mount(MountArgs args) {
  args.metadata = absolute(args.metadata);
  args.image = absolute(args.image);
  if (args.log_file.empty()) args.log_file = args.metadata + ".log";
  args.log_file = absolute(args.log_file);
  if (!args.profile.empty()) args.profile = absolute(args.profile);
  if (!args.record_profile.empty()) args.record_profile = absolute(args.record_profile);
  if (!args.metrics_file.empty()) args.metrics_file = absolute(args.metrics_file);
  auto controls = hydration_commands(args.controls);
  if (!controls) return usage_error(controls.status());
  args.hydration_controls = std::move(*controls);
  if (args.no_hydration) args.hydration_controls.push_back({HydrateCommand::Kind::kPause, 0});
  if (args.hydration) args.hydration_controls.push_back({HydrateCommand::Kind::kResume, 0});
  if (Status ok = preflight(args); !ok) {
    if (args.foreground) tell_service_manager_failed(ok);
    return fail(ok);
  }
  return args.foreground ? run_foreground(args) : run_detached(args);
}

}  // namespace

Command add_mount_command(CLI::App& root) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* app = root.add_subcommand("mount",
                                      "Present the clone as the regular file IMAGE (created empty "
                                      "if missing) and hydrate it in the\n"
                                      "background. Returns once the mount is ready; the daemon "
                                      "keeps running until 'clonefs unmount'.");
  app->add_option("--metadata", args->metadata, "The clone's metadata file")->required();
  app->add_option("IMAGE", args->image,
                  "File to present the image at (a FUSE mount on a regular file)")
      ->required();
  app->add_flag("--foreground,-f", args->foreground, "Stay in the foreground, logging to stderr");
  auto* paused = app->add_flag(
      "--no-hydration", args->no_hydration,
      "Start with background hydration paused ('clonefs hydrate IMAGE --resume' starts it)");
  app->add_flag("--hydration", args->hydration,
                "Start background hydration even if it was paused when last mounted")
      ->excludes(paused);
  add_hydration_flags(app, args->controls);
  auto* cor = app->add_flag("--copy-on-read", args->copy_on_read,
                            "Also hydrate regions when they are read (default: off)");
  app->add_flag("--no-copy-on-read", args->no_copy_on_read, "Do not hydrate on read (the default)")
      ->excludes(cor);
  app->add_option("--copy-method", args->copy_method,
                  "The best way hydration may copy: reflink (share the source's extents, the "
                  "default), copy_file_range or read-write; the best the files allow up to it is "
                  "used")
      ->check(CLI::IsMember({"reflink", "copy_file_range", "read-write"}));
  app->add_option("-o", args->fuse_options, "FUSE mount options, e.g. -o allow_other (repeatable)")
      ->allow_extra_args(false);
  app->add_option("--profile", args->profile,
                  "Hydrate the regions of this access profile first, in its order (recorded by "
                  "--record-profile on a clone of the same source; docs/PROFILE.md)");
  app->add_option("--record-profile", args->record_profile,
                  "Record the order in which this mount first uses regions into FILE (written "
                  "every 10 s and at unmount)");
  app->add_flag("--no-priority", args->no_priority,
                "Hydrate in address order (after any profile) even when reads fall through to "
                "the source (default: their regions first)");
  app->add_option("--source-timeout", args->source_timeout,
                  "NBD sources: seconds a read waits for an unreachable source (reconnecting) "
                  "before failing with EIO (default 30)")
      ->check(CLI::Range(0.1, 86400.0));
  app->add_option("--source-connections", args->source_connections,
                  "NBD sources: connections to keep open to the server (default " +
                      std::to_string(NbdSourceOptions{}.connections) + ", at most " +
                      std::to_string(kMaxNbdConnections) + ")")
      ->check(CLI::Range(1u, kMaxNbdConnections));
  app->add_flag("--share-source", args->share_source,
                "http(s) sources: read through the one nbdkit, with a cache on disk, shared by "
                "every clone of the URL on the host (started if none runs, stopped when none "
                "uses it), so that the golden is fetched once per host (README \"HTTP(S) "
                "sources\")");
  app->add_option("--readahead", args->readahead_kib,
                  "KiB the kernel reads ahead in the image file (its page cache: a loop device "
                  "left buffered)\n(default 0: the kernel's, 128 KiB)")
      ->check(CLI::Range(0u, 1u << 20));
  app->add_flag("--writeback-cache", args->writeback_cache,
                "Let the kernel cache writes to IMAGE and send them in batches (faster small "
                "writes through a loop device left buffered); fsync still returns only once "
                "they are committed. A write past IMAGE's end then fails at fsync, not at "
                "write");
  app->add_flag("--no-passthrough", args->no_passthrough,
                "Serve every open of IMAGE through the daemon. By default an open made once "
                "every region is valid is handed to the kernel, which then reads and writes the "
                "destination itself (FUSE passthrough, Linux 6.9+, as root)");
  app->add_option(
         "--restart-limit", args->restart_limit,
         "Restarts of a crashed serving process allowed within a minute before the "
         "mount ends\n(default 10; 0: no supervisor, a crash of the daemon ends the mount)")
      ->check(CLI::Range(0u, 10000u));
  app->add_option("--log-level", args->log_level,
                  "trace, debug, info, warn, error, critical or off (default info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app->add_option("--log-file", args->log_file,
                  "Log file of the detached daemon (default: METADATA.log)");
  app->add_option("--metrics-file", args->metrics_file,
                  "Keep the status in Prometheus text format in this file (rewritten every 5 s "
                  "by rename, for node_exporter's textfile collector)");
  return {app, [args] { return run_mount(*args); }};
}

}  // namespace clonefs::cli
