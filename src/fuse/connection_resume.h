// Serving a FUSE connection that outlives the process that served it (fuse/supervisor.h).
//
// The kernel keeps a connection while any process holds its /dev/fuse descriptor. A new serving
// process needs two things libfuse 3.14 has no call for:
//  - the INIT handshake is done: libfuse answers every request with EIO until its session has
//    processed a FUSE_INIT (fuse_session's got_init, which is private). The first serving process
//    keeps the kernel's INIT request as read; a successor replays it through the public
//    fuse_session_process_buf(), so libfuse negotiates exactly what the kernel was told (same
//    options, same init() callback). Its reply goes to the kernel under a unique no request
//    carries, and the kernel drops it (ENOENT, which libfuse ignores).
//  - requests the dead process had read but not answered sit on the kernel's processing list:
//    FUSE_NOTIFY_RESEND (Linux 6.9) puts them back on the pending queue, a plain write to the
//    device descriptor.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

#include <string>

#include "util/status.h"

namespace clonefs {

// Reads the connection's first request, which must be the kernel's FUSE_INIT, processes it as
// fuse_session_loop would and returns it as read (for successors to replay).
Result<std::string> receive_init(fuse_session* session);

// Processes a FUSE_INIT recorded by receive_init() on a new session of the same connection.
Status replay_init(fuse_session* session, const std::string& init_request);

// Asks the kernel to queue again every request read but not answered on this connection.
// EINVAL from a kernel older than 6.9, which does not know the notification.
Status notify_resend(int fuse_fd);

// False once the kernel has ended the connection (unmounted or aborted).
bool connection_alive(int fuse_fd);

}  // namespace clonefs
