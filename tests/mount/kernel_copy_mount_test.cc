// Hydration inside the kernel on real file systems on loop devices (issue 14): on XFS and btrfs
// the destination shares the source's extents (reflink), on ext4 copy_file_range copies them, and
// a source on another file system is read and written. Each clone reads as the source, a user
// write through the image leaves the source as it was, and after finalize the destination is the
// image even once the source is deleted.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSlice = 32 * kMiB;
constexpr uint64_t kStamp = 4096;
constexpr uint64_t kStampAt = kMiB;  // inside each data slice

// A source random where it holds data, made in a moment whatever its size: one random chunk
// written once, and on file systems that share extents cloned across the file, then a unique
// stamp written into every data slice (so no two slices read alike and an offset error shows);
// every fourth slice a hole; an odd-sized random tail, so the image does not end on a block.
class GeneratedSource {
 public:
  GeneratedSource(uint64_t size, uint64_t seed)
      : size_(size), chunk_(random_bytes(kSlice, seed)), tail_(random_bytes(size % kSlice, ~seed)) {
    for (uint64_t k = 0; k < size / kSlice; ++k) stamps_.push_back(random_bytes(kStamp, seed + k));
  }
  uint64_t size() const { return size_; }
  static bool is_hole(uint64_t slice) { return slice % 4 == 3; }

  // What the source holds at [offset, offset + out.size()).
  void expected(uint64_t offset, std::span<std::byte> out) const {
    for (uint64_t done = 0; done < out.size();) {
      const uint64_t pos = offset + done, slice = pos / kSlice, in = pos % kSlice;
      const uint64_t n = std::min<uint64_t>(out.size() - done, kSlice - in);
      std::byte* to = out.data() + done;
      if (slice >= stamps_.size()) {
        std::memcpy(to, tail_.data() + in, n);
      } else if (is_hole(slice)) {
        std::memset(to, 0, n);
      } else {
        std::memcpy(to, chunk_.data() + in, n);
        const uint64_t from = std::max(in, kStampAt), to_end = std::min(in + n, kStampAt + kStamp);
        if (from < to_end)
          std::memcpy(to + (from - in), stamps_[slice].data() + (from - kStampAt), to_end - from);
      }
      done += n;
    }
  }

  // Writes the source at `path`; `share` clones the chunk instead of writing it again.
  void write(const std::string& path, bool share) const {
    int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size_)), 0);
    auto put = [&](uint64_t at, const std::vector<std::byte>& bytes) {
      ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)),
                static_cast<ssize_t>(bytes.size()))
          << path << " at " << at << ": " << std::strerror(errno);
    };
    put(0, chunk_);
    for (uint64_t k = 1; k < stamps_.size(); ++k) {
      if (is_hole(k)) continue;
      if (share) {
        file_clone_range range{};
        range.src_fd = fd;
        range.src_offset = 0;
        range.src_length = kSlice;
        range.dest_offset = k * kSlice;
        ASSERT_EQ(::ioctl(fd, FICLONERANGE, &range), 0)
            << "clone slice " << k << " of " << path << ": " << std::strerror(errno);
      } else {
        put(k * kSlice, chunk_);
      }
    }
    for (uint64_t k = 0; k < stamps_.size(); ++k)
      if (!is_hole(k)) put(k * kSlice + kStampAt, stamps_[k]);
    if (!tail_.empty()) put(size_ - tail_.size(), tail_);
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  }

 private:
  uint64_t size_;
  std::vector<std::byte> chunk_, tail_;
  std::vector<std::vector<std::byte>> stamps_;
};

// A user write: `bytes` at `offset`, over what the source holds elsewhere.
struct Overlay {
  uint64_t offset = 0;
  std::vector<std::byte> bytes;
};

// The first offset where `path` differs from the source (with `overlay` over it), or -1.
int64_t first_difference(const std::string& path, const GeneratedSource& source,
                         const Overlay* overlay = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<std::byte> got(8 * kMiB), want(8 * kMiB);
  int64_t differs = -1;
  for (uint64_t pos = 0; pos < source.size() && differs < 0; pos += got.size()) {
    const uint64_t n = std::min<uint64_t>(got.size(), source.size() - pos);
    source.expected(pos, std::span(want).first(n));
    if (overlay != nullptr) {
      const uint64_t from = std::max(pos, overlay->offset),
                     to = std::min(pos + n, overlay->offset + overlay->bytes.size());
      if (from < to)
        std::memcpy(want.data() + (from - pos), overlay->bytes.data() + (from - overlay->offset),
                    to - from);
    }
    if (::pread(fd, got.data(), n, static_cast<off_t>(pos)) != static_cast<ssize_t>(n) ||
        std::memcmp(got.data(), want.data(), n) != 0) {
      differs = static_cast<int64_t>(pos);
    }
  }
  ::close(fd);
  return differs;
}

uint64_t used_bytes(const std::string& mountpoint) {
  run("sync -f " + shell_quote(mountpoint));
  struct statvfs st {};
  if (::statvfs(mountpoint.c_str(), &st) != 0) return 0;
  return (st.f_blocks - st.f_bfree) * st.f_frsize;
}

// A file system made on a sparse file in the test's directory, on a loop device, mounted.
struct ScratchFilesystem {
  std::string type, backing, mountpoint;
  std::unique_ptr<LoopDevice> loop;
  std::unique_ptr<FilesystemMount> mounted;
  std::string file(const std::string& name) const { return mountpoint + "/" + name; }
  // Unmounted and mounted again: nothing of its files left in the page cache.
  bool remount() {
    mounted.reset();
    mounted = std::make_unique<FilesystemMount>(loop->device(), mountpoint);
    return mounted->ok();
  }
};

class KernelCopyMount : public MountTest {
 protected:
  // "" and `fs` ready, or why the file system cannot be had.
  std::string make_filesystem(const std::string& type, const std::string& size,
                              ScratchFilesystem& fs) {
    const std::string mkfs = type == "xfs"     ? "mkfs.xfs -q -f"
                             : type == "btrfs" ? "mkfs.btrfs -q -f"
                                               : "mkfs.ext4 -q -F";
    fs.type = type;
    fs.backing = dir_.file(type + ".fs");
    fs.mountpoint = dir_.file(type);
    CommandResult made = run("truncate -s " + size + " " + shell_quote(fs.backing) + " && " + mkfs +
                             " " + shell_quote(fs.backing));
    if (made.exit_code != 0) return mkfs + " failed: " + made.output;
    fs.loop = std::make_unique<LoopDevice>(fs.backing);
    if (!fs.loop->ok()) return "losetup failed for " + fs.backing;
    fs.mounted = std::make_unique<FilesystemMount>(fs.loop->device(), fs.mountpoint);
    if (!fs.mounted->ok()) return "mounting " + type + " failed (no kernel support?)";
    return "";
  }

  void TearDown() override {
    // The clone's files live on the scratch file systems: the mount goes first.
    mounted_.reset();
    for (ScratchFilesystem* fs : {&first_, &second_}) {
      fs->mounted.reset();
      fs->loop.reset();
    }
  }

  struct Hydrated {
    double seconds = 0;    // `hydrate --resume --wait`
    double grown_mib = 0;  // the destination file system's used space, by the hydration
  };
  // Creates the clone of `source` (at source_path) into dest_path, hydrates it paused-then-
  // resumed, and checks it end to end.
  Hydrated hydrate_and_check(const GeneratedSource& source, const std::string& source_path,
                             const std::string& dest_path, ScratchFilesystem& dest_fs,
                             const std::string& expected_method) {
    CommandResult created =
        run(clonefs("create --source " + shell_quote(source_path) + " --dest " +
                    shell_quote(dest_path) + " --metadata " + shell_quote(meta())));
    EXPECT_EQ(created.exit_code, 0) << created.output;
    mount("--no-hydration");
    if (HasFailure()) return {};
    CloneStatus before = status_json(image());
    EXPECT_TRUE(before.hydration.has_value());
    if (before.hydration) {
      EXPECT_EQ(before.hydration->copy_method, expected_method);
    }

    const uint64_t used_before = used_bytes(dest_fs.mountpoint);
    const auto start = std::chrono::steady_clock::now();
    CommandResult hydrated = run(clonefs("hydrate --resume --wait " + shell_quote(image())));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(hydrated.exit_code, 0) << hydrated.output;
    const double grown_mib =
        (static_cast<double>(used_bytes(dest_fs.mountpoint)) - static_cast<double>(used_before)) /
        kMiB;
    CloneStatus after = status_json(image());
    EXPECT_TRUE(after.complete);
    EXPECT_TRUE(after.counters.has_value());
    if (after.counters) {
      const StatusCounters& c = *after.counters;
      std::printf(
          "%s: hydrated %.1f MiB in %.3f s by %s, used space %+.1f MiB: %llu regions "
          "shared, %llu copied, %llu skipped\n",
          dest_fs.type.c_str(), static_cast<double>(source.size()) / kMiB, seconds,
          expected_method.c_str(), grown_mib, static_cast<unsigned long long>(c.regions_shared),
          static_cast<unsigned long long>(c.regions_copied),
          static_cast<unsigned long long>(c.regions_skipped));
      if (expected_method == "reflink") {
        EXPECT_GT(c.regions_shared, 0u);
        // Only the odd-sized last region may have been copied.
        EXPECT_LE(c.regions_copied, 1u);
      } else {
        EXPECT_EQ(c.regions_shared, 0u);
        EXPECT_GT(c.regions_copied, 0u);
      }
      EXPECT_GT(c.regions_skipped, 0u) << "the source's holes are not copied";
    }
    CommandResult same = run("cmp " + shell_quote(image()) + " " + shell_quote(source_path));
    EXPECT_EQ(same.exit_code, 0) << "cmp IMAGE SOURCE: " << same.output;

    // A user write into a hydrated (on XFS: shared) region, not block-aligned, through the image.
    Overlay write{kSlice + 8 * kMiB + 1234, random_bytes(100 * 1024, 77)};
    int fd = ::open(image().c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(
        ::pwrite(fd, write.bytes.data(), write.bytes.size(), static_cast<off_t>(write.offset)),
        static_cast<ssize_t>(write.bytes.size()));
    EXPECT_EQ(::fsync(fd), 0);
    ::close(fd);
    // The written range and a MiB around it (cmp checked the rest before).
    std::vector<std::byte> around(write.bytes.size() + 2 * kMiB), want(around.size());
    fd = ::open(image().c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(::pread(fd, around.data(), around.size(), static_cast<off_t>(write.offset - kMiB)),
              static_cast<ssize_t>(around.size()));
    ::close(fd);
    source.expected(write.offset - kMiB, want);
    std::memcpy(want.data() + kMiB, write.bytes.data(), write.bytes.size());
    EXPECT_TRUE(around == want) << "the image does not read the write over the source";
    EXPECT_EQ(first_difference(source_path, source), -1) << "a write through the image changed "
                                                            "the source";
    unmount();
    CommandResult finalized = run(clonefs("finalize --metadata " + shell_quote(meta())));
    EXPECT_EQ(finalized.exit_code, 0) << finalized.output;
    // cmp DEST SOURCE, around the write.
    const uint64_t write_end = write.offset + write.bytes.size();
    CommandResult head = run("cmp -n " + std::to_string(write.offset) + " " +
                             shell_quote(dest_path) + " " + shell_quote(source_path));
    EXPECT_EQ(head.exit_code, 0) << head.output;
    CommandResult rest = run("cmp -i " + std::to_string(write_end) + " " + shell_quote(dest_path) +
                             " " + shell_quote(source_path));
    EXPECT_EQ(rest.exit_code, 0) << rest.output;

    // The source goes; the destination, read from the disk again, is still the image.
    EXPECT_EQ(::unlink(source_path.c_str()), 0);
    EXPECT_TRUE(dest_fs.remount());
    EXPECT_EQ(first_difference(dest_path, source, &write), -1)
        << "the destination changed when the source was deleted";
    return {seconds, grown_mib};
  }

  ScratchFilesystem first_, second_;
};

TEST_F(KernelCopyMount, XfsShares4GiBInUnder2SecondsUsingAlmostNoSpace) {
  std::string problem = make_filesystem("xfs", "8G", first_);
  ASSERT_EQ(problem, "") << "install-deps.sh installs xfsprogs";
  GeneratedSource source(4 * 1024 * kMiB + 5000, 14);
  ASSERT_NO_FATAL_FAILURE(source.write(first_.file("source.img"), /*share=*/true));
  Hydrated h = hydrate_and_check(source, first_.file("source.img"), first_.file("dest.img"), first_,
                                 "reflink");
  EXPECT_LT(h.grown_mib, 64.0) << "the destination shares the source's extents";
  EXPECT_LT(h.seconds, 2.0) << "4 GiB shared by reflink";
}

TEST_F(KernelCopyMount, BtrfsSharesTheSourcesExtents) {
  std::string problem = make_filesystem("btrfs", "4G", first_);
  // btrfs is optional: Debian's kernels have it, some CI kernels do not.
  if (!problem.empty()) GTEST_SKIP() << "btrfs unavailable: " << problem;
  GeneratedSource source(1024 * kMiB + 3000, 15);
  ASSERT_NO_FATAL_FAILURE(source.write(first_.file("source.img"), /*share=*/true));
  Hydrated h = hydrate_and_check(source, first_.file("source.img"), first_.file("dest.img"), first_,
                                 "reflink");
  EXPECT_LT(h.grown_mib, 64.0) << "the destination shares the source's extents";
}

TEST_F(KernelCopyMount, Ext4CopiesWithCopyFileRange) {
  std::string problem = make_filesystem("ext4", "1G", first_);
  ASSERT_EQ(problem, "");
  GeneratedSource source(128 * kMiB + 7000, 16);
  ASSERT_NO_FATAL_FAILURE(source.write(first_.file("source.img"), /*share=*/false));
  Hydrated h = hydrate_and_check(source, first_.file("source.img"), first_.file("dest.img"), first_,
                                 "copy_file_range");
  // ext4 copies for real: the source's data, not its holes.
  EXPECT_GT(h.grown_mib, 64.0);
  EXPECT_LT(h.grown_mib, 128.0);
}

TEST_F(KernelCopyMount, ASourceOnAnotherFileSystemIsReadAndWritten) {
  ASSERT_EQ(make_filesystem("xfs", "1G", first_), "");
  ASSERT_EQ(make_filesystem("ext4", "1G", second_), "");
  GeneratedSource source(128 * kMiB + 7000, 17);
  ASSERT_NO_FATAL_FAILURE(source.write(first_.file("source.img"), /*share=*/true));
  hydrate_and_check(source, first_.file("source.img"), second_.file("dest.img"), second_,
                    "read-write");
}

}  // namespace
}  // namespace clonefs::testing
