// Issue 13 through real mounts: what hydration copies first. A read that falls through to the
// source, a recorded access profile replayed on a fresh clone of the same source (and refused on
// another), and the files named by --files (their extents cross-checked with filefrag). Which
// regions were hydrated is read from the destination's allocation (SEEK_DATA): hydration writes
// only what it copies, and the sources here have no zero regions.
#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <thread>

#include "engine/access_profile.h"
#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion = 16384;  // the default region size

// Whether `path` has data anywhere in [offset, offset + length).
bool has_data(const std::string& path, uint64_t offset, uint64_t length) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  off_t data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  ::close(fd);
  return data >= 0 && static_cast<uint64_t>(data) < offset + length;
}

bool read_image(const std::string& image, uint64_t offset, uint64_t length) {
  int fd = ::open(image.c_str(), O_RDONLY);
  if (fd < 0) return false;
  std::vector<char> buf(length);
  bool ok =
      ::pread(fd, buf.data(), length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length);
  ::close(fd);
  return ok;
}

class HydrationOrder : public MountTest {
 protected:
  // Polls status until `done` holds or 60 s pass (a bound for a hang, not a speed check).
  template <typename Done>
  CloneStatus wait_status(const std::string& image, Done done) {
    CloneStatus s;
    for (int i = 0; i < 600; ++i) {
      s = status_json(image);
      if (done(s)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return s;
  }
  void create_other(const std::string& name, const std::string& source_path) {
    CommandResult r = run(clonefs("create --source " + shell_quote(source_path) + " --dest " +
                                  shell_quote(dir_.file(name + ".dest")) + " --metadata " +
                                  shell_quote(dir_.file(name + ".meta"))));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
};

// Rate-limited to 64 KiB/s, address order covers about 1 MiB in the test's time; the far region
// read is in the destination long before (written through by the read itself), and so is the
// region after it (the read's readahead, copied first).
TEST_F(HydrationOrder, AFallThroughReadIsHydratedBeforeTheRegionsBelowIt) {
  write_file(source(), random_bytes(32 * kMiB, 7));
  create();
  mount("--rate 64K");
  ASSERT_TRUE(read_image(image(), 24 * kMiB, 64 * 1024));
  const uint64_t after = 24 * kMiB + 64 * 1024;
  wait_status(image(), [&](const CloneStatus&) {
    return has_data(dest(), 24 * kMiB, kRegion) && has_data(dest(), after, kRegion);
  });
  EXPECT_TRUE(has_data(dest(), 24 * kMiB, kRegion)) << "the region read was not hydrated";
  EXPECT_TRUE(has_data(dest(), after, kRegion)) << "the region after it was not hydrated";
  EXPECT_FALSE(has_data(dest(), 8 * kMiB, 16 * kMiB)) << "regions below it were hydrated first";
}

TEST_F(HydrationOrder, ARecordedProfileIsHydratedFirstOnAFreshCloneAndRefusedOnAnother) {
  write_file(source(), random_bytes(32 * kMiB, 8));
  const std::string profile = dir_.file("boot.profile");
  create();
  mount("--no-hydration --record-profile " + shell_quote(profile));
  const uint64_t reads[] = {20 * kMiB, 4 * kMiB, 28 * kMiB};
  for (uint64_t offset : reads) ASSERT_TRUE(read_image(image(), offset, 64 * 1024));
  unmount();
  auto recorded = read_profile(profile);
  ASSERT_TRUE(recorded.is_ok()) << recorded.status().message();
  std::set<uint64_t> regions;
  for (const RegionRun& run : recorded->runs) {
    for (uint64_t r = run.first; r < run.first + run.count; ++r) regions.insert(r);
  }
  for (uint64_t offset : reads) EXPECT_TRUE(regions.contains(offset / kRegion)) << offset;

  // A fresh clone of the same source, rate-limited: the profile first, in a few seconds, while
  // address order has not started.
  create_other("fresh", source());
  {
    MountedImage fresh(dir_.file("fresh.meta"), dir_.file("fresh.img"),
                       "--rate 1M --profile " + shell_quote(profile));
    ASSERT_TRUE(fresh.ok()) << fresh.result().output;
    CloneStatus s = wait_status(fresh.image(), [](const CloneStatus& s) {
      return s.hydration && s.hydration->plan_regions_left == 0;
    });
    ASSERT_TRUE(s.hydration);
    EXPECT_EQ(s.hydration->plan_regions, regions.size());
    EXPECT_EQ(s.hydration->plan_regions_left, 0u);
    for (uint64_t offset : reads) {
      EXPECT_TRUE(has_data(dir_.file("fresh.dest"), offset, kRegion)) << offset;
    }
    EXPECT_FALSE(has_data(dir_.file("fresh.dest"), 8 * kMiB, 12 * kMiB - kRegion))
        << "address order went before the profile";
  }

  // The same, given to a running mount.
  create_other("later", source());
  {
    MountedImage later(dir_.file("later.meta"), dir_.file("later.img"), "--no-hydration");
    ASSERT_TRUE(later.ok()) << later.result().output;
    CommandResult hydrate = run(
        clonefs("hydrate " + shell_quote(later.image()) + " --profile " + shell_quote(profile)));
    ASSERT_EQ(hydrate.exit_code, 0) << hydrate.output;
    EXPECT_NE(hydrate.output.find(std::to_string(regions.size()) + " regions of " + profile),
              std::string::npos)
        << hydrate.output;
    CloneStatus s = status_json(later.image());
    ASSERT_TRUE(s.hydration);
    EXPECT_EQ(s.hydration->plan_regions, regions.size());
    EXPECT_EQ(s.hydration->plan_regions_left, regions.size());  // paused: nothing copied yet
  }

  // A clone of another source of the same size: refused at mount and by hydrate.
  write_file(dir_.file("other.img"), random_bytes(32 * kMiB, 9));
  create_other("other", dir_.file("other.img"));
  {
    MountedImage refused(dir_.file("other.meta"), dir_.file("other-image"),
                         "--profile " + shell_quote(profile));
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.result().output.find("was recorded on another source"), std::string::npos)
        << refused.result().output;
  }
  MountedImage other(dir_.file("other.meta"), dir_.file("other-image"), "--no-hydration");
  ASSERT_TRUE(other.ok()) << other.result().output;
  CommandResult hydrate =
      run(clonefs("hydrate " + shell_quote(other.image()) + " --profile " + shell_quote(profile)));
  EXPECT_NE(hydrate.exit_code, 0);
  EXPECT_NE(hydrate.output.find("was recorded on another source"), std::string::npos)
      << hydrate.output;
  EXPECT_EQ(status_json(other.image()).hydration->plan_regions, 0u);
}

// The regions of a file's extents, as filefrag (e2fsprogs) reports them in 4 KiB blocks.
std::set<uint64_t> filefrag_regions(const std::string& file, uint64_t region) {
  CommandResult r = run("filefrag -v -b4096 " + shell_quote(file));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::set<uint64_t> regions;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    // "   0:        0..     255:      34816..     35071:    256:             last,eof"
    unsigned long long logical_begin, logical_end, physical_begin, physical_end;
    unsigned index;
    if (std::sscanf(line.c_str(), " %u: %llu.. %llu: %llu.. %llu:", &index, &logical_begin,
                    &logical_end, &physical_begin, &physical_end) != 5) {
      continue;
    }
    for (uint64_t r = physical_begin * 4096 / region; r <= (physical_end * 4096 + 4095) / region;
         ++r) {
      regions.insert(r);
    }
  }
  return regions;
}

TEST_F(HydrationOrder, FilesHintsHydrateTheRegionsOfThoseFilesFirst) {
  const std::string content = dir_.file("content");
  ASSERT_EQ(run("mkdir -p " + shell_quote(content + "/usr/lib")).exit_code, 0);
  write_file(content + "/usr/lib/toolchain.bin", random_bytes(3 * kMiB, 10));
  write_file(content + "/filler.bin", random_bytes(8 * kMiB, 11));
  CommandResult mkfs = run("mkfs.ext4 -q -F -b 4096 -d " + shell_quote(content) + " " +
                           shell_quote(source()) + " 64M");
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
  create();
  mount("--no-hydration --rate 1M");
  LoopDevice loop(image());
  ASSERT_TRUE(loop.ok());
  const std::string mnt = dir_.file("mnt");
  FilesystemMount fs(loop.device(), mnt);
  ASSERT_TRUE(fs.ok());
  const std::set<uint64_t> expected = filefrag_regions(mnt + "/usr/lib/toolchain.bin", kRegion);
  ASSERT_GE(expected.size(), 3 * kMiB / kRegion);
  CommandResult hinted =
      run(clonefs("hydrate " + shell_quote(image()) + " --files " + shell_quote(mnt + "/usr")));
  ASSERT_EQ(hinted.exit_code, 0) << hinted.output;
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.hydration);
  EXPECT_EQ(s.hydration->plan_regions, expected.size()) << hinted.output;
  CommandResult resume = run(clonefs("hydrate " + shell_quote(image()) + " --resume"));
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  s = wait_status(image(), [](const CloneStatus& s) {
    return s.hydration && s.hydration->plan_regions_left == 0;
  });
  EXPECT_EQ(s.hydration->plan_regions_left, 0u);
  for (uint64_t r : expected) ASSERT_TRUE(has_data(dest(), r * kRegion, kRegion)) << "region " << r;
  // The files' regions first: of the filler's 512 regions (random data, copied at 1 MiB/s, so
  // 64 a second) hardly any, though holes and zero regions elsewhere go without a copy.
  uint64_t filler_hydrated = 0;
  for (uint64_t r : filefrag_regions(mnt + "/filler.bin", kRegion)) {
    if (!expected.contains(r) && has_data(dest(), r * kRegion, kRegion)) ++filler_hydrated;
  }
  EXPECT_LT(filler_hydrated, 128u) << "address order went before the files named";

  // A path on another filesystem is refused, naming it.
  CommandResult elsewhere =
      run(clonefs("hydrate " + shell_quote(image()) + " --files " + shell_quote(dir_.path())));
  EXPECT_NE(elsewhere.exit_code, 0);
  EXPECT_NE(elsewhere.output.find("not on a loop device over"), std::string::npos)
      << elsewhere.output;
}

}  // namespace
}  // namespace clonefs::testing
