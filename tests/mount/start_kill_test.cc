// Issue 26, hole 5: the first serving process of a supervised mount sent requests to its own
// mount while starting (the probe stat, the size pin, the readahead statfs). SIGKILLed while one
// of its own workers held such a request, it could never finish dying: the request waited for an
// answer only a successor could give, and the supervisor waited for that death before starting
// one. The mount hung for good. The start now runs in a child of the supervisor that nobody waits
// for before a restart.
//
// The request is held deterministically without any hook in clonefs: the mount runs with
// `-o debug`, and its stderr is a packet-mode pipe of one packet. libfuse writes one line when a
// worker takes a request and one before it answers; the test leaves the GETATTR line in the pipe,
// so the worker that took the start's stat blocks before answering it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The clonefs process serving `metadata`: the one of its processes with the most threads (the
// CLI's parent and the supervisor have one each). 0 if none.
int serving_process(const std::string& metadata) {
  int best = 0;
  size_t most = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_text(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find("clonefs") == std::string::npos || cmdline.find(metadata) == std::string::npos)
      continue;
    size_t threads = 0;
    for (auto it = std::filesystem::directory_iterator(entry.path() / "task", ec);
         it != std::filesystem::directory_iterator(); ++it) {
      ++threads;
    }
    if (threads > most) {
      most = threads;
      best = std::stoi(name);
    }
  }
  return best;
}

// Whether a thread of `pid` is blocked writing to its stderr.
bool writing_stderr(int pid) {
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "syscall");
    std::string number, fd;
    if (in >> number >> fd && number == "1" && fd == "0x2") return true;
  }
  return false;
}

// The FUSE connection mounted at `mountpoint`, aborted (/sys/fs/fuse/connections/N/abort, with
// fusectl mounted for it if it was not): how the test frees a hung mount.
void abort_connection(const std::string& mountpoint) {
  const bool mounted = run("grep -q ' /sys/fs/fuse/connections ' /proc/mounts").exit_code == 0;
  if (!mounted) run("mount -t fusectl none /sys/fs/fuse/connections");
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (point != mountpoint) continue;
    const std::string minor = device.substr(device.find(':') + 1);
    std::ofstream("/sys/fs/fuse/connections/" + minor + "/abort") << "1";
  }
  if (!mounted) run("umount /sys/fs/fuse/connections");
}

class StartKill : public MountTest {};

TEST_F(StartKill, AKillWhileTheStartsRequestIsHeldRestartsTheServingProcess) {
  write_file(source(), random_bytes(8 * kMiB, 271));
  create("--region-size 64K");
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_DIRECT | O_CLOEXEC), 0);
  ASSERT_EQ(::fcntl(pipe_fds[0], F_SETPIPE_SZ, 4096), 4096);  // one packet
  // Inherited by the shell, which takes one digit after `2>&`.
  const int err_out = ::fcntl(pipe_fds[1], F_DUPFD, 5);
  ASSERT_GE(err_out, 0);
  ASSERT_LE(err_out, 9);
  ::close(pipe_fds[1]);
  const int err_in = pipe_fds[0];
  int scratch[2];
  ASSERT_EQ(::pipe2(scratch, O_CLOEXEC | O_NONBLOCK), 0);

  std::atomic<bool> mount_returned{false};
  std::thread mounter([&] {
    mounted_ = std::make_unique<MountedImage>(
        meta(), image(), "--no-hydration -o debug 2>&" + std::to_string(err_out));
    mount_returned = true;
  });
  // Every line passes but the one of the first GETATTR: its worker then blocks on the next.
  bool held = false;
  std::string passed;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       !held && std::chrono::steady_clock::now() < until && !mount_returned;) {
    char buf[8192];
    ssize_t copied = ::tee(err_in, scratch[1], sizeof buf, SPLICE_F_NONBLOCK);
    if (copied <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    ssize_t n = ::read(scratch[0], buf, sizeof buf);
    std::string packet(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (packet.find("opcode: GETATTR") != std::string::npos) {
      held = true;
    } else {
      passed += packet;
      (void)!::read(err_in, buf, sizeof buf);
    }
  }
  int serving = 0;
  if (held) {
    serving = serving_process(meta());
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (serving > 0 && !writing_stderr(serving) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::atomic<bool> draining{true};
  std::thread drain([&] {
    char buf[8192];
    while (draining) {
      pollfd in{err_in, POLLIN, 0};
      if (::poll(&in, 1, 50) > 0) (void)!::read(err_in, buf, sizeof buf);
    }
  });
  EXPECT_TRUE(held) << "no GETATTR while the mount started; its stderr:\n" << passed;
  EXPECT_GT(serving, 0);
  if (serving > 0) ::kill(serving, SIGKILL);

  // Bounded: a mount that hangs is freed by aborting its connection, and fails the test.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!mount_returned && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const bool hung = !mount_returned;
  if (hung) abort_connection(image());
  mounter.join();
  EXPECT_FALSE(hung) << "the mount hung after the first serving process was killed";
  const bool up = mounted_ && mounted_->ok();
  EXPECT_TRUE(up) << (mounted_ ? mounted_->result().output : "");
  if (!hung && up) {
    // The successor serves, and the restart is on the record.
    std::vector<std::byte> got(4096);
    int fd = ::open(image().c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    EXPECT_EQ(::pread(fd, got.data(), got.size(), 4096), 4096) << std::strerror(errno);
    if (fd >= 0) ::close(fd);
    EXPECT_NE(mounted_->daemon_pid(), serving);
    CloneStatus s = status_json(image());
    EXPECT_TRUE(s.supervisor && s.supervisor->restarts == 1u)
        << (s.supervisor ? s.supervisor->restarts : 0) << " restarts";
    EXPECT_EQ(mounted_->unmount().exit_code, 0);
    mounted_.reset();
  }
  draining = false;
  drain.join();
  if (hung) run("umount -l " + shell_quote(image()));
  ::close(err_in);
  ::close(err_out);
  ::close(scratch[0]);
  ::close(scratch[1]);
}

}  // namespace
}  // namespace clonefs::testing
