#include "fuse/supervisor_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <type_traits>
#include <vector>

namespace clonefs {
namespace {

static_assert(std::is_trivially_copyable_v<ImageAttributes>);

// Both ends are the same binary (the supervisor forks its serving processes), so the attributes
// travel as their bytes.
constexpr char kConnection = 'C';
constexpr char kReady = 'R';
constexpr char kFailed = 'E';
constexpr char kWitness = 'W';
constexpr char kSizeRefused = 'S';
constexpr size_t kMaxMessage = 64 * 1024;

Status send_datagram(int channel, const std::string& bytes, int fd) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  do {
    n = ::sendmsg(channel, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(bytes.size()))
    return Status::from_errno(n < 0 ? errno : EIO, "message to the supervisor");
  return Status::ok();
}

}  // namespace

Status send_connection(int channel, const HeldConnection& connection) {
  std::string bytes(1, kConnection);
  bytes.push_back(connection.created_image ? 1 : 0);
  bytes.append(reinterpret_cast<const char*>(&connection.attributes), sizeof connection.attributes);
  bytes.append(reinterpret_cast<const char*>(&connection.image_size), sizeof connection.image_size);
  bytes.append(reinterpret_cast<const char*>(&connection.image_device),
               sizeof connection.image_device);
  bytes.append(reinterpret_cast<const char*>(&connection.image_inode),
               sizeof connection.image_inode);
  bytes += connection.init_request;
  return send_datagram(channel, bytes, connection.fuse_fd);
}

Status send_destination_witness(int channel, int fd) {
  return send_datagram(channel, std::string(1, kWitness), fd);
}

Status send_size_refused(int channel) {
  return send_datagram(channel, std::string(1, kSizeRefused), -1);
}

Status send_report(int channel, const Status& report) {
  std::string bytes(1, report ? kReady : kFailed);
  if (!report) {
    int code = report.code();
    bytes.append(reinterpret_cast<const char*>(&code), sizeof code);
    bytes += report.message().substr(0, kMaxMessage - 64);
  }
  return send_datagram(channel, bytes, -1);
}

Result<std::optional<ChannelMessage>> receive_message(int channel) {
  std::vector<char> buf(kMaxMessage);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::optional<ChannelMessage>{};
  if (n < 0) return Status::from_errno(errno, "message from the serving process");
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  }
  const auto size = static_cast<size_t>(n);
  const size_t header =
      2 + sizeof(ImageAttributes) + sizeof(uint64_t) + sizeof(dev_t) + sizeof(ino_t);
  if (size >= header && buf[0] == kConnection && fd >= 0) {
    ConnectionMessage m;
    m.connection.fuse_fd = fd;
    m.connection.created_image = buf[1] != 0;
    const char* at = buf.data() + 2;
    std::memcpy(&m.connection.attributes, at, sizeof(ImageAttributes));
    at += sizeof(ImageAttributes);
    std::memcpy(&m.connection.image_size, at, sizeof(uint64_t));
    at += sizeof(uint64_t);
    std::memcpy(&m.connection.image_device, at, sizeof(dev_t));
    std::memcpy(&m.connection.image_inode, at + sizeof(dev_t), sizeof(ino_t));
    m.connection.init_request.assign(buf.data() + header, size - header);
    return std::optional<ChannelMessage>(std::move(m));
  }
  if (size == 1 && buf[0] == kWitness && fd >= 0)
    return std::optional<ChannelMessage>(WitnessMessage{fd});
  if (fd >= 0) ::close(fd);
  if (size == 1 && buf[0] == kSizeRefused)
    return std::optional<ChannelMessage>(SizeRefusedMessage{});
  if (size == 1 && buf[0] == kReady) return std::optional<ChannelMessage>(ReportMessage{});
  if (size >= 1 + sizeof(int) && buf[0] == kFailed) {
    int code;
    std::memcpy(&code, buf.data() + 1, sizeof code);
    std::string text(buf.data() + 1 + sizeof code, size - 1 - sizeof code);
    return std::optional<ChannelMessage>(ReportMessage{Status::error(code, text)});
  }
  return Status::error(
      EPROTO, "malformed message from the serving process (" + std::to_string(size) + " bytes)");
}

}  // namespace clonefs
