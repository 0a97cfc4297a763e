// docs/SEMANTICS.md "Terms" (Source) and "When things fail" (Opening, Creating): the aliasing and
// overwrite checks that need root — a loop device backed by the source, a bind mount of the
// source, a loop device holding a filesystem, and an IMAGE path that is one of the clone's own
// files. Each is refused naming both paths, and nothing is written. The no-root cases are in
// tests/unit/same_storage_test.cc and tests/unit/existing_destination_test.cc.
#include <filesystem>

#include "engine/clone.h"
#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

// `mount --bind FROM ONTO`, unmounted at scope end.
class BindMount {
 public:
  BindMount(const std::string& from, std::string onto) : onto_(std::move(onto)) {
    result_ = run("mount --bind " + shell_quote(from) + " " + shell_quote(onto_));
  }
  ~BindMount() {
    if (ok() && run("umount " + shell_quote(onto_)).exit_code != 0)
      run("umount -l " + shell_quote(onto_));
  }
  BindMount(const BindMount&) = delete;
  BindMount& operator=(const BindMount&) = delete;
  bool ok() const { return result_.exit_code == 0; }
  const std::string& output() const { return result_.output; }

 private:
  std::string onto_;
  CommandResult result_;
};

void expect_message(const Status& st, const std::vector<std::string>& needles) {
  ASSERT_FALSE(st.is_ok()) << "accepted";
  for (const std::string& needle : needles) {
    EXPECT_NE(st.message().find(needle), std::string::npos)
        << "missing '" << needle << "' in: " << st.message();
  }
}

void make_sparse(const std::string& path, uint64_t size) {
  write_file(path, {});
  fs::resize_file(path, size);
}

class DeviceAliasing : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    write_file(source(), random_bytes(4 * kMiB, 21));
    source_digest_ = file_digest(source());
  }
  std::string source_digest_;
};

TEST_F(DeviceAliasing, DestinationLoopDeviceBackedByTheSourceIsRefusedAtCreate) {
  LoopDevice loop(source());
  ASSERT_TRUE(loop.ok());
  Status st = create_clone({source(), loop.device(), meta(), 65536, true});
  expect_message(st, {"destination " + loop.device(), "is the source " + source(),
                      "loop device backed by that file"});
  EXPECT_EQ(file_digest(source()), source_digest_);
  EXPECT_FALSE(fs::exists(meta()));
}

TEST_F(DeviceAliasing, DestinationRepointedAtALoopDeviceOfTheSourceIsRefusedAtOpen) {
  make_sparse(dest(), 4 * kMiB);
  fs::create_symlink(dest(), dir_.file("dest-link"));
  ASSERT_TRUE(create_clone({source(), dir_.file("dest-link"), meta(), 65536, false}).is_ok());
  LoopDevice loop(source());
  ASSERT_TRUE(loop.ok());
  fs::remove(dir_.file("dest-link"));
  fs::create_symlink(loop.device(), dir_.file("dest-link"));
  auto clone = Clone::open(meta(), {});
  expect_message(clone.status(), {"destination " + dir_.file("dest-link"),
                                  "is the source " + source(), "loop device backed by that file"});
  EXPECT_EQ(file_digest(source()), source_digest_);
}

TEST_F(DeviceAliasing, BindMountOfTheSourceOntoTheDestinationIsRefused) {
  make_sparse(dest(), 4 * kMiB);
  BindMount bind(source(), dest());
  ASSERT_TRUE(bind.ok()) << bind.output();
  Status st = create_clone({source(), dest(), meta(), 65536, true});
  expect_message(
      st, {"destination " + dest(), "is the source " + source(), "same file under another name"});
  EXPECT_EQ(file_digest(source()), source_digest_);
  EXPECT_FALSE(fs::exists(meta()));
}

TEST_F(DeviceAliasing, LoopDeviceHoldingAFilesystemIsRefusedUnlessForced) {
  make_sparse(dir_.file("disk.img"), 8 * kMiB);
  CommandResult mkfs = run("mkfs.ext4 -q -F " + shell_quote(dir_.file("disk.img")));
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
  const std::string disk_digest = file_digest(dir_.file("disk.img"));
  LoopDevice loop(dir_.file("disk.img"));
  ASSERT_TRUE(loop.ok());
  Status st = create_clone({source(), loop.device(), meta(), 65536, false});
  expect_message(st, {"destination " + loop.device() + " holds an ext4 filesystem",
                      "pass --force to overwrite it"});
  EXPECT_EQ(st.code(), EEXIST);
  EXPECT_FALSE(fs::exists(meta()));
  loop.detach();
  EXPECT_EQ(file_digest(dir_.file("disk.img")), disk_digest);
  LoopDevice again(dir_.file("disk.img"));
  ASSERT_TRUE(again.ok());
  Status forced = create_clone({source(), again.device(), meta(), 65536, true});
  EXPECT_TRUE(forced.is_ok()) << forced.message();
}

TEST_F(DeviceAliasing, BlankLoopDeviceIsAdopted) {
  make_sparse(dir_.file("blank.img"), 8 * kMiB);
  LoopDevice loop(dir_.file("blank.img"));
  ASSERT_TRUE(loop.ok());
  Status st = create_clone({source(), loop.device(), meta(), 65536, false});
  EXPECT_TRUE(st.is_ok()) << st.message();
}

// The IMAGE path is the file the FUSE mount covers: if it is one of the clone's own files, the
// mount hides it (or, for the source, puts writable bytes over the golden image's name).
class ImageAliasing : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    write_file(source(), random_bytes(4 * kMiB, 22));
    create();
  }
  std::vector<std::string> digests() const { return {file_digest(source()), file_digest(dest())}; }
  void expect_mount_refused(const std::string& image, const std::vector<std::string>& needles) {
    const std::vector<std::string> before = digests();
    {
      MountedImage mounted(meta(), image,
                           "--no-hydration");  // unmounted at scope end if it got through
      EXPECT_NE(mounted.result().exit_code, 0) << "mounted over " << image;
      for (const std::string& needle : needles) {
        EXPECT_NE(mounted.result().output.find(needle), std::string::npos)
            << "missing '" << needle << "' in: " << mounted.result().output;
      }
    }
    EXPECT_EQ(digests(), before) << "the source or the destination changed";
  }
};

TEST_F(ImageAliasing, ImageThatIsTheDestinationIsRefused) {
  expect_mount_refused(dest(), {"image " + dest(), "is the destination " + dest()});
}

TEST_F(ImageAliasing, ImageThatIsAHardLinkOfTheSourceIsRefused) {
  fs::create_hard_link(source(), image());
  expect_mount_refused(
      image(), {"image " + image(), "is the source " + source(), "same file under another name"});
}

TEST_F(ImageAliasing, ImageThatIsAHardLinkOfTheMetadataIsRefused) {
  fs::create_hard_link(meta(), image());
  expect_mount_refused(image(), {"image " + image(), "is the metadata " + meta()});
}

}  // namespace
}  // namespace clonefs::testing
