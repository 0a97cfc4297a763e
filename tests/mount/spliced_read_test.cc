// Issue #27 part 2: a read through the daemon that lies wholly in valid regions is answered by
// splicing the destination's pages into the reply (fuse/spliced_reads.h); reads touching an
// invalid region keep the engine's path. Reads here are O_DIRECT, so each reaches the daemon as
// one request of exactly its size, and the status's spliced_reads tells which path answered it.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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
  expect_range(128 * kKiB, kRead, 1);            // valid throughout
  expect_range(2 * kMiB, kRead, 0);              // invalid throughout: the source's bytes
  expect_range(kWritten - kRead / 2, kRead, 0);  // straddles the last valid region
  expect_range(kWritten - kRead, kRead, 1);      // ends exactly at the last valid byte
  expect_range(0, 16 * kKiB, 0);                 // valid but small: the engine's copy
  ::close(fd);
}

// The destination a file on an ext4 file system of its own (a loop device), which is shut down
// (EXT4_IOC_SHUTDOWN) under the running daemon: every read of it then fails with EIO for real,
// a splice from the daemon's open descriptor as a pread.
class SplicedReadErrors : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    write_file(dir_.file("fs.img"), std::vector<std::byte>(32 * kMiB));
    loop_ = std::make_unique<LoopDevice>(dir_.file("fs.img"));
    ASSERT_TRUE(loop_->ok()) << "losetup failed";
    CommandResult r = run("mkfs.ext4 -q " + shell_quote(loop_->device()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(::mkdir(dir_.file("fs").c_str(), 0755), 0);
    fs_ = std::make_unique<FilesystemMount>(loop_->device(), dir_.file("fs"));
    ASSERT_TRUE(fs_->ok());
  }
  void TearDown() override {
    mounted_.reset();  // the daemon holds the destination open
    fs_.reset();
    loop_.reset();
  }
  std::string dest_on_fs() const { return dir_.file("fs") + "/dest.img"; }
  void shut_down_fs() {
    int fd = ::open(dir_.file("fs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    uint32_t flags = kGoingDownNoLogFlush;
    EXPECT_EQ(::ioctl(fd, kExt4Shutdown, &flags), 0) << std::strerror(errno);
    ::close(fd);
  }

  static constexpr unsigned long kExt4Shutdown = _IOR('X', 125, uint32_t);  // EXT4_IOC_SHUTDOWN
  static constexpr uint32_t kGoingDownNoLogFlush = 2;  // EXT4_GOING_FLAGS_NOLOGFLUSH
  std::unique_ptr<LoopDevice> loop_;
  std::unique_ptr<FilesystemMount> fs_;
};

// A read error of the destination reaches the reader as EIO on the spliced path as on the
// copying one, and invalid regions still read the source.
TEST_F(SplicedReadErrors, DestinationReadErrorsReachTheReaderAsEio) {
  std::vector<std::byte> model = random_bytes(kImageSize, 274);
  write_file(source(), model);
  CommandResult r =
      run(clonefs("create --region-size 64K --source " + shell_quote(source()) + " --dest " +
                  shell_quote(dest_on_fs()) + " --metadata " + shell_quote(meta())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  mount("--no-hydration");
  int fd = ::open(image().c_str(), O_RDWR | O_DIRECT);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  // [0, 2 MiB) valid and committed: nothing is left to sync once the file system is gone.
  std::vector<std::byte> written = random_bytes(2 * kMiB, 275);
  write_direct(fd, 0, written);
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  std::memcpy(model.data(), written.data(), written.size());
  shut_down_fs();

  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.passthrough);
  const uint64_t spliced_before = s.passthrough->spliced_reads;
  DirectRead spliced = read_direct(fd, kMiB + 128 * kKiB, kRead);
  EXPECT_EQ(spliced.result, -EIO) << "a spliced read of a failing destination";
  DirectRead copied = read_direct(fd, kMiB + 64 * kKiB, 16 * kKiB);
  EXPECT_EQ(copied.result, -EIO) << "a copied read of a failing destination";
  // The source still serves what is not valid.
  DirectRead invalid = read_direct(fd, 3 * kMiB, kRead);
  ASSERT_EQ(invalid.result, static_cast<ssize_t>(kRead));
  EXPECT_TRUE(std::equal(invalid.bytes.begin(), invalid.bytes.end(), model.begin() + 3 * kMiB));
  s = status_json(image());
  ASSERT_TRUE(s.passthrough);
  EXPECT_EQ(s.passthrough->spliced_reads - spliced_before, 1u)
      << "the failing 256 KiB read did not take the spliced path";
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Io, SplicedReads, ::testing::Values("", "--no-passthrough"),
                         [](const auto& info) {
                           return std::string(info.param).empty() ? "OwnIo" : "LibfuseIo";
                         });

}  // namespace
}  // namespace clonefs::testing
