// The serving process's messages to its supervisor, over a SOCK_SEQPACKET socket pair: one
// datagram each, the connection's descriptor passed with SCM_RIGHTS.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "fuse/supervision.h"
#include "util/status.h"

namespace clonefs {

// The first serving process, once the kernel's INIT is answered.
Status send_connection(int channel, const HeldConnection& connection);
// The first serving process, before it serves: Supervision::destination_witness_fd.
Status send_destination_witness(int channel, int fd);
// Once per serving process: OK once requests are served, or what stopped it first. The
// supervisor sends one too, to the first serving process: how the mount's start went
// (SuperviseOptions::start_mount).
Status send_report(int channel, const Status& report);

// A serving process of a mount with the writeback cache, each time the kernel's write-back of a
// write past the end was refused: the kernel grew IMAGE for it, and keeps that size (and the
// bytes past the end, in its cache) until a truncate puts it back (SuperviseOptions::pin_size).
Status send_size_refused(int channel);

struct ConnectionMessage {
  HeldConnection connection;  // fuse_fd: the supervisor's own descriptor now
};
struct ReportMessage {
  Status report;
};
struct WitnessMessage {
  int fd = -1;  // the supervisor's own descriptor now
};
struct SizeRefusedMessage {};
using ChannelMessage =
    std::variant<ConnectionMessage, ReportMessage, WitnessMessage, SizeRefusedMessage>;

// One message without waiting: nullopt when none is queued; an error for a malformed one.
Result<std::optional<ChannelMessage>> receive_message(int channel);

}  // namespace clonefs
