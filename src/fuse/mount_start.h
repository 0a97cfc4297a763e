// What a mount's start asks of the mount itself, and who asks it. Each of these requests waits
// for an answer from a serving process; none may wait inside a process whose death the
// supervisor waits for (fuse/supervisor.h, SuperviseOptions::start_mount).
#pragma once

#include <atomic>
#include <cstdint>

#include "fuse/serve.h"
#include "util/status.h"

namespace clonefs {

// What a mount's start asks of the mount itself, once it serves: the size pinned for the
// writeback cache, a stat proving the kernel's INIT handshake succeeded and requests are served,
// the readahead (not fatal: logged). Each request waits for an answer from a serving process, so
// it never runs in one whose death a supervisor waits for: a supervised mount runs it in a
// short-lived child of the supervisor (fuse/supervisor.h, SuperviseOptions::start_mount).
Status start_mount(const ServeOptions& options, uint64_t image_size);

// In the first serving process of a supervised mount: the supervisor's word on start_mount,
// which it waits for before it hydrates and reports ready. Polled, so that it ends with the
// session (`serving_ended`) if no word comes.
Status await_mount_start(int channel, const std::atomic<bool>& serving_ended);

}  // namespace clonefs
