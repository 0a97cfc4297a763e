#include "fuse/mounted_session.h"

#include <fuse_lowlevel.h>

#include <cstdlib>
#include <sstream>
#include <string_view>
#include <vector>

#include "fuse/connection_resume.h"
#include "fuse/image_ops.h"
#include "fuse/passthrough.h"
#include "fuse/supervisor_channel.h"

namespace clonefs {
namespace {

// libfuse's argument vector: defaults first, so the user's -o options can override them.
// default_permissions, which no option turns off: the kernel enforces the image's mode and
// ownership (without it, allow_other lets every user read, write and chmod a root's image).
std::vector<std::string> fuse_arguments(const std::vector<std::string>& fuse_options) {
  std::vector<std::string> args = {"clonefs", "-o",
                                   "fsname=clonefs,subtype=clonefs,default_permissions"};
  for (const std::string& o : fuse_options) {
    args.push_back("-o");
    args.push_back(o);
  }
  return args;
}

}  // namespace

unsigned max_read_option(const std::vector<std::string>& fuse_options) {
  unsigned max_read = 0;
  for (const std::string& list : fuse_options) {
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, ',');) {
      constexpr std::string_view kKey = "max_read=";
      if (item.rfind(kKey, 0) == 0) {
        max_read = static_cast<unsigned>(std::strtoul(item.c_str() + kKey.size(), nullptr, 0));
      }
    }
  }
  return max_read;
}

MountedSession::MountedSession(const std::vector<std::string>& fuse_options,
                               const std::string& image_path, ImageSession& state,
                               const HeldConnection* held, const std::string& target) {
  std::vector<std::string> strings = fuse_arguments(fuse_options);
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  session_ = fuse_session_new(&args, &image_operations(), sizeof(fuse_lowlevel_ops), &state);
  fuse_opt_free_args(&args);
  if (session_ == nullptr) {
    status_ = Status::error(EINVAL, "invalid FUSE options for " + image_path);
    return;
  }
  if (fuse_set_signal_handlers(session_) != 0) {
    status_ = Status::error(EIO, "cannot install signal handlers");
    return;
  }
  signals_ = true;
  if (held != nullptr) {
    // libfuse takes /dev/fd/N as "already open and mounted": nothing to unmount here.
    std::string device = "/dev/fd/" + std::to_string(held->fuse_fd);
    if (fuse_session_mount(session_, device.c_str()) != 0) {
      status_ = Status::error(
          EIO, "cannot serve the connection of " + image_path + " held by the supervisor");
      return;
    }
    attach_io(state);
    return;
  }
  if (fuse_session_mount(session_, target.c_str()) != 0) {
    status_ =
        Status::error(EIO, "cannot mount " + image_path +
                               " (is /dev/fuse usable, and are you root or the file's owner?)");
    return;
  }
  mounted_ = true;
  attach_io(state);
}

// Before INIT is read or replayed: its reply must offer passthrough (fuse/passthrough.h).
void MountedSession::attach_io(ImageSession& state) {
  if (int rc = attach_passthrough(session_, state); rc != 0)
    status_ = Status::error(-rc, "cannot route the FUSE connection's I/O for passthrough");
}

MountedSession::~MountedSession() {
  if (mounted_) fuse_session_unmount(session_);
  if (signals_) fuse_remove_signal_handlers(session_);
  if (session_) fuse_session_destroy(session_);
}

Status MountedSession::handshake(const Supervision* supervision, const ImageAttributes& attributes,
                                 const HeldImage* image, uint64_t image_size) {
  if (supervision == nullptr) return Status::ok();
  if (supervision->connection) return replay_init(session_, supervision->connection->init_request);
  auto init = receive_init(session_);
  if (!init) return init.status();
  HeldConnection connection{fuse_session_fd(session_), std::move(*init), attributes,
                            image != nullptr && image->created, image_size};
  if (image != nullptr) {
    connection.image_device = image->st.st_dev;
    connection.image_inode = image->st.st_ino;
  }
  CLONEFS_RETURN_IF_ERROR(send_connection(supervision->channel, connection));
  mounted_ = false;
  return Status::ok();
}

int MountedSession::loop(const RequestLoopOptions& options) {
  return run_request_loop(session_, options);
}

}  // namespace clonefs
