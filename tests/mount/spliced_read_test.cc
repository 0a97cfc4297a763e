// Issue #27 part 2: a read through the daemon that lies wholly in valid regions is answered by
// splicing the destination's pages into the reply (fuse/spliced_reads.h); reads touching an
// invalid region keep the engine's path. Reads here are O_DIRECT, so each reaches the daemon as
// one request of exactly its size, and the status's spliced_reads tells which path answered it.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kKiB = 1024, kMiB = 1024 * kKiB;
constexpr uint64_t kImageSize = 4 * kMiB;
constexpr uint64_t kWritten = 1 * kMiB;  // [0, 1 MiB) written whole: valid regions
constexpr size_t kRead = 256 * kKiB;     // spliced when wholly valid (at least 64 KiB)

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// `length` bytes at `offset` of an O_DIRECT descriptor; errno (negative) if the read fails.
struct DirectRead {
  ssize_t result = 0;
  std::vector<std::byte> bytes;
};
DirectRead read_direct(int fd, uint64_t offset, size_t length) {
  std::unique_ptr<void, FreeDeleter> buf(std::aligned_alloc(4096, length));
  DirectRead out;
  out.result = ::pread(fd, buf.get(), length, static_cast<off_t>(offset));
  if (out.result < 0) {
    out.result = -errno;
    return out;
  }
  const auto* p = static_cast<const std::byte*>(buf.get());
  out.bytes.assign(p, p + out.result);
  return out;
}

void write_direct(int fd, uint64_t offset, const std::vector<std::byte>& bytes) {
  std::unique_ptr<void, FreeDeleter> buf(std::aligned_alloc(4096, bytes.size()));
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  ASSERT_EQ(::pwrite(fd, buf.get(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()))
      << std::strerror(errno);
}

class SplicedReads : public MountTest, public ::testing::WithParamInterface<const char*> {
 protected:
  uint64_t spliced() {
    CloneStatus s = status_json(image());
    EXPECT_TRUE(s.passthrough) << "no passthrough object in the live status";
    return s.passthrough ? s.passthrough->spliced_reads : 0;
  }
  // A clone whose first kWritten bytes were written (valid, the destination holds them) and
  // whose rest is invalid (hydration paused); returns what the image holds.
  std::vector<std::byte> partly_valid_clone(int* fd) {
    std::vector<std::byte> model = random_bytes(kImageSize, 272);
    write_file(source(), model);
    create("--region-size 64K");
    mount(std::string("--no-hydration ") + GetParam());
    *fd = ::open(image().c_str(), O_RDWR | O_DIRECT);
    EXPECT_GE(*fd, 0) << std::strerror(errno);
    std::vector<std::byte> written = random_bytes(kWritten, 273);
    write_direct(*fd, 0, written);
    std::memcpy(model.data(), written.data(), written.size());
    return model;
  }
};

// Valid, invalid and straddling ranges all read the image's bytes; only the wholly valid one is
// spliced. With passthrough wanted the session's I/O is clonefs's own (its splice_send answers),
// with --no-passthrough libfuse's.
TEST_P(SplicedReads, OnlyWhollyValidRangesAreSplicedAndEveryRangeReadsItsBytes) {
  int fd = -1;
  const std::vector<std::byte> model = partly_valid_clone(&fd);
  ASSERT_GE(fd, 0);
  auto expect_range = [&](uint64_t offset, size_t length, uint64_t spliced_delta) {
    const uint64_t before = spliced();
    DirectRead r = read_direct(fd, offset, length);
    ASSERT_EQ(r.result, static_cast<ssize_t>(length)) << std::strerror(static_cast<int>(-r.result));
    EXPECT_TRUE(std::equal(r.bytes.begin(), r.bytes.end(), model.begin() + offset))
        << "bytes differ in the read at " << offset;
    EXPECT_EQ(spliced() - before, spliced_delta) << "the read at " << offset;
  };
  expect_range(128 * kKiB, kRead, 1);             // valid throughout
  expect_range(2 * kMiB, kRead, 0);               // invalid throughout: the source's bytes
  expect_range(kWritten - kRead / 2, kRead, 0);   // straddles the last valid region
  expect_range(kWritten - kRead, kRead, 1);       // ends exactly at the last valid byte
  expect_range(0, 16 * kKiB, 0);                  // valid but small: the engine's copy
  ::close(fd);
}

// The destination a device-mapper device over a loop device, so that part of it can be made to
// fail reads for real (an error target) under the running daemon.
class SplicedReadErrors : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (run("command -v dmsetup && dmsetup version").exit_code != 0) {
      if (running_in_ci()) FAIL() << "CI must run device-mapper tests: no usable dmsetup";
      GTEST_SKIP() << "needs device-mapper (dmsetup)";
    }
    write_file(dir_.file("backing.img"), std::vector<std::byte>(kImageSize));
    loop_ = std::make_unique<LoopDevice>(dir_.file("backing.img"));
    ASSERT_TRUE(loop_->ok()) << "losetup failed";
    name_ = "clonefs-splice-" + std::to_string(::getpid());
    CommandResult r = run("dmsetup create " + name_ + " --table " +
                          shell_quote(table(/*failing=*/false)));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    created_ = true;
  }
  void TearDown() override {
    mounted_.reset();  // the daemon holds the device
    if (created_) run("dmsetup remove --retry " + name_);
    loop_.reset();
  }
  std::string device() const { return "/dev/mapper/" + name_; }
  // Sectors [2048, 4096) of the device — image bytes [1 MiB, 2 MiB) — read from the loop
  // device, or fail every read and write (the error target).
  std::string table(bool failing) const {
    const std::string loop = loop_->device();
    return "0 2048 linear " + loop + " 0\n2048 2048 " +
           (failing ? std::string("error") : "linear " + loop + " 2048") + "\n4096 4096 linear " +
           loop + " 4096";
  }
  void fail_reads() {
    CommandResult r = run("dmsetup reload " + name_ + " --table " + shell_quote(table(true)) +
                          " && dmsetup resume " + name_ + " && blockdev --flushbufs " +
                          shell_quote(device()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  std::unique_ptr<LoopDevice> loop_;
  std::string name_;
  bool created_ = false;
};

// A read error of the destination reaches the reader as EIO on the spliced path as on the
// engine's, and ranges outside the failing part still read their bytes.
TEST_F(SplicedReadErrors, DestinationReadErrorsReachTheReaderAsEio) {
  std::vector<std::byte> model = random_bytes(kImageSize, 274);
  write_file(source(), model);
  CommandResult r =
      run(clonefs("create --region-size 64K --source " + shell_quote(source()) + " --dest " +
                  shell_quote(device()) + " --metadata " + shell_quote(meta())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  mount("--no-hydration");
  int fd = ::open(image().c_str(), O_RDWR | O_DIRECT);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  // [0, 2 MiB) valid; durable first, so the destination's cached pages are clean and go with
  // the flush of its buffers.
  std::vector<std::byte> written = random_bytes(2 * kMiB, 275);
  write_direct(fd, 0, written);
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  std::memcpy(model.data(), written.data(), written.size());
  fail_reads();

  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.passthrough);
  const uint64_t spliced_before = s.passthrough->spliced_reads;
  DirectRead failing = read_direct(fd, kMiB + 128 * kKiB, kRead);
  EXPECT_EQ(failing.result, -EIO) << "a spliced read of failing destination sectors";
  DirectRead small = read_direct(fd, kMiB + 64 * kKiB, 16 * kKiB);
  EXPECT_EQ(small.result, -EIO) << "an engine read of failing destination sectors";
  DirectRead good = read_direct(fd, 128 * kKiB, kRead);
  ASSERT_EQ(good.result, static_cast<ssize_t>(kRead));
  EXPECT_TRUE(std::equal(good.bytes.begin(), good.bytes.end(), model.begin() + 128 * kKiB));
  s = status_json(image());
  ASSERT_TRUE(s.passthrough);
  EXPECT_EQ(s.passthrough->spliced_reads - spliced_before, 2u)
      << "the failing and the good 256 KiB reads were not both spliced";
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Io, SplicedReads, ::testing::Values("", "--no-passthrough"),
                         [](const auto& info) {
                           return std::string(info.param).empty() ? "OwnIo" : "LibfuseIo";
                         });

}  // namespace
}  // namespace clonefs::testing
