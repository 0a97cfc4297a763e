// The request loop (fuse/request_loop.h) on a libfuse session whose device is the test's
// (fuse_session_custom_io): every request is read into a worker's own locked buffer that holds
// whatever libfuse reads, every request read is processed, and the loop ends as libfuse's did —
// on ENODEV (unmounted), a failed read, or a stop signal, cancelling workers blocked in a read.
#include "fuse/request_loop.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace clonefs {
namespace {

// The sanitizers' runtimes replace mlock() with one that locks nothing (and says it did).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kMlockLocks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kMlockLocks = false;
#else
constexpr bool kMlockLocks = true;
#endif
#else
constexpr bool kMlockLocks = true;
#endif

// The VmFlags of the mapping holding `address` (proc(5)): "lo" locked, "nh" no huge pages, "dc"
// not copied on fork.
std::set<std::string> mapping_flags(const void* address) {
  const auto at = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(':') > 8) {
      inside = begin <= at && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      std::set<std::string> flags;
      std::istringstream words(line.substr(8));
      for (std::string flag; words >> flag;) flags.insert(flag);
      return flags;
    }
  }
  return {};
}

bool can_lock(size_t bytes) {
  rlimit limit{};
  return ::geteuid() == 0 || (::getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur >= bytes);
}

// What the fake device saw and does, for the callbacks (libfuse passes them the session's
// userdata, which is the operations' and stays null here).
struct Device {
  std::mutex lock;
  std::set<const void*> buffers;    // where libfuse asked to read into
  size_t largest_read = 0;          // the most it asked for
  bool every_buffer_locked = true;  // each, as its mapping says
  int requests = 0;                 // to hand out before `end_errno`
  int handed = 0;
  // Then: every read fails with `end_errno`, or only the first does and the others block, or all
  // block.
  enum class After { kFail, kFailOnceThenBlock, kBlock } after = After::kFail;
  int end_errno = ENODEV;
  bool failed = false;
  int blocked = 0;
  int block_pipe[2] = {-1, -1};
  std::set<uint64_t> replied;  // uniques of the replies written
};
Device* device = nullptr;

ssize_t device_read(int, void* buf, size_t len, void*) {
  std::unique_lock<std::mutex> hold(device->lock);
  const bool first_read_into_it = device->buffers.insert(buf).second;
  if (first_read_into_it && mapping_flags(buf).count("lo") == 0)
    device->every_buffer_locked = false;
  device->largest_read = std::max(device->largest_read, len);
  if (device->handed < device->requests) {
    // A GETATTR: libfuse answers it (EIO, no INIT was processed), which shows it was processed.
    fuse_in_header header{};
    header.len = sizeof header + sizeof(fuse_getattr_in);
    header.opcode = FUSE_GETATTR;
    header.unique = 2 * static_cast<uint64_t>(++device->handed);
    header.nodeid = FUSE_ROOT_ID;
    std::memset(buf, 0, header.len);
    std::memcpy(buf, &header, sizeof header);
    return header.len;
  }
  const bool block = device->after == Device::After::kBlock ||
                     (device->after == Device::After::kFailOnceThenBlock && device->failed);
  device->failed = true;
  if (block) {
    ++device->blocked;
    hold.unlock();
    char byte;
    return ::read(device->block_pipe[0], &byte, 1);  // a cancellation point, as the device's read
  }
  // Not before every request handed out is answered: libfuse drops a request read once the
  // session has exited (as it may: the connection is gone), and another worker could still be
  // returning one.
  while (device->replied.size() < static_cast<size_t>(device->handed)) {
    hold.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    hold.lock();
  }
  errno = device->end_errno;
  return -1;
}

ssize_t device_writev(int, iovec* iov, int count, void*) {
  fuse_out_header header{};
  std::memcpy(&header, iov[0].iov_base, sizeof header);
  std::lock_guard<std::mutex> hold(device->lock);
  device->replied.insert(header.unique);
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  return static_cast<ssize_t>(total);
}

class RequestLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device = &device_;
    ASSERT_EQ(::pipe(device_.block_pipe), 0);
    char arg0[] = "clonefs-test";
    char* argv[] = {arg0};
    fuse_args args = FUSE_ARGS_INIT(1, argv);
    fuse_lowlevel_ops ops{};
    session_ = fuse_session_new(&args, &ops, sizeof ops, nullptr);
    fuse_opt_free_args(&args);  // the copy libfuse's option parsing made
    ASSERT_NE(session_, nullptr);
    fuse_custom_io io{};
    io.read = device_read;
    io.writev = device_writev;
    // The session closes the descriptor it is given.
    ASSERT_EQ(fuse_session_custom_io(session_, &io, ::dup(device_.block_pipe[1])), 0);
  }
  void TearDown() override {
    if (session_ != nullptr) fuse_session_destroy(session_);
    for (int fd : device_.block_pipe) ::close(fd);
    device = nullptr;
  }

  RequestLoopOptions options(unsigned workers) {
    RequestLoopOptions o;
    o.workers = workers;
    o.resident_buffers = true;
    return o;
  }

  Device device_;
  fuse_session* session_ = nullptr;
};

TEST(ReceiveBufferTest, ResidentBufferIsLockedOutOfHugePagesAndForks) {
  if (!can_lock(receive_buffer_bytes())) GTEST_SKIP() << "RLIMIT_MEMLOCK too low to lock a buffer";
  ReceiveBuffer buffer(true);
  ASSERT_NE(buffer.data(), nullptr) << std::strerror(buffer.error());
  EXPECT_TRUE(buffer.locked()) << std::strerror(buffer.error());
  EXPECT_EQ(buffer.size() % static_cast<size_t>(::getpagesize()), 0u);
  std::set<std::string> flags = mapping_flags(buffer.data());
  if (kMlockLocks) {
    EXPECT_EQ(flags.count("lo"), 1u);
  }
  EXPECT_EQ(flags.count("nh"), 1u);
  EXPECT_EQ(flags.count("dc"), 1u);
  const size_t pages = buffer.size() / static_cast<size_t>(::getpagesize());
  std::vector<unsigned char> resident(pages);
  ASSERT_EQ(::mincore(buffer.data(), buffer.size(), resident.data()), 0);
  for (size_t i = 0; i < pages; ++i) ASSERT_TRUE(resident[i] & 1) << "page " << i;
}

TEST(ReceiveBufferTest, NotResidentBufferIsNotLocked) {
  ReceiveBuffer buffer(false);
  ASSERT_NE(buffer.data(), nullptr);
  EXPECT_FALSE(buffer.locked());
  EXPECT_EQ(mapping_flags(buffer.data()).count("lo"), 0u);
}

TEST_F(RequestLoopTest, EveryRequestIsReadIntoAWorkersLockedBufferAndProcessed) {
  if (!can_lock(4 * receive_buffer_bytes())) GTEST_SKIP() << "RLIMIT_MEMLOCK too low";
  device_.requests = 200;
  EXPECT_EQ(run_request_loop(session_, options(4)), 0);  // ENODEV: unmounted
  EXPECT_EQ(device_.replied.size(), 200u);
  EXPECT_GE(device_.buffers.size(), 1u);
  EXPECT_LE(device_.buffers.size(), 4u);
  if (kMlockLocks) {
    EXPECT_TRUE(device_.every_buffer_locked);
  }
  // libfuse reads no more than the buffer holds.
  EXPECT_LE(device_.largest_read, receive_buffer_bytes());
  EXPECT_GE(device_.largest_read, 256u * 4096u);
}

TEST_F(RequestLoopTest, FailedReadEndsTheLoopWithItsErrnoAndCancelsBlockedWorkers) {
  device_.requests = 3;
  device_.end_errno = EIO;
  device_.after = Device::After::kFailOnceThenBlock;
  EXPECT_EQ(run_request_loop(session_, options(4)), -EIO);
  EXPECT_EQ(device_.replied.size(), 3u);
}

TEST_F(RequestLoopTest, StopSignalEndsTheLoopWithItsNumberAndCancelsBlockedWorkers) {
  device_.requests = 2;
  device_.after = Device::After::kBlock;  // only the signal ends the loop
  std::atomic<bool> done{false};
  std::thread signaller([&] {
    for (int i = 0; i < 2000 && !done; ++i) {
      {
        std::lock_guard<std::mutex> hold(device_.lock);
        if (device_.blocked >= 4) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!done) ::kill(::getpid(), SIGTERM);
  });
  int rc = run_request_loop(session_, options(4));
  done = true;
  signaller.join();
  EXPECT_EQ(rc, SIGTERM);
  EXPECT_EQ(device_.replied.size(), 2u);
  // The handler is the one before the loop again.
  struct sigaction now {};
  ::sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

}  // namespace
}  // namespace clonefs
