// Root among other users (docs/SEMANTICS.md, "Access"): for each file clonefs creates, rewrites,
// chmods or removes as root, the user `nobody` prepares the directory it owns and clonefs works
// in — a symlink to a root-owned 0600 victim, a hard link to it, a FIFO, or the directory itself
// renamed and replaced by a symlink to a root-owned directory while clonefs runs — and the victim
// must come out byte for byte, mode, owner and xattrs unchanged, with clonefs having said why it
// refused (or, where the planted name is simply never used, having done its work anyway).
//
// The kernel's fs.protected_* sysctls are not relied on, nor changed: the directories are not
// sticky (protected_symlinks and protected_fifos only guard sticky world-writable ones), and the
// hard links are made by root in nobody's directory (protected_hardlinks only stops their
// creation by nobody; a hard link is the same name to clonefs whoever made it).
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "control/control_protocol.h"
#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

const std::string kAsNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";

enum class Attack { kSymlink, kHardLink, kFifo };
const Attack kAttacks[] = {Attack::kSymlink, Attack::kHardLink, Attack::kFifo};

const char* name_of(Attack a) {
  switch (a) {
    case Attack::kSymlink:
      return "symlink";
    case Attack::kHardLink:
      return "hard link";
    case Attack::kFifo:
      return "FIFO";
  }
  return "?";
}

// A root-owned 0600 file an attacker would like root to write, chmod, set xattrs on or delete.
struct Victim {
  std::string path;
  std::string digest;
};

class HostileDirectoryTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped()) return;
    if (run("command -v setpriv").exit_code != 0) {
      if (running_in_ci()) FAIL() << "setpriv (util-linux) is missing";
      GTEST_SKIP() << "needs setpriv";
    }
    ASSERT_EQ(run("chmod 755 " + shell_quote(dir_.path()) + " && install -d -o 65534 -g 65534 " +
                  shell_quote(svc()) + " && install -d -m 700 " + shell_quote(dir_.file("root")) +
                  " && install -d -m 1777 " + shell_quote(sticky()))
                  .exit_code,
              0);
    write_file(source(), random_bytes(1 << 20, 25));
    create();
  }
  void TearDown() override {
    // A mount a failing cell left behind, wherever a swap moved it.
    run("grep -o ' " + dir_.path() + "[^ ]*' /proc/mounts | xargs -r -n1 umount -l");
  }

  std::string svc(const std::string& name = "") const {
    return dir_.file("svc") + (name.empty() ? "" : "/" + name);
  }
  // A root-owned directory everyone may write, sticky like /tmp: root trusts metadata there
  // (io/trusted_file.h), and nobody can still plant names beside it.
  std::string sticky(const std::string& name = "") const {
    return dir_.file("sticky") + (name.empty() ? "" : "/" + name);
  }
  CommandResult as_nobody(const std::string& command) {
    return run(kAsNobody + "sh -c " + shell_quote(command));
  }
  // A fresh victim in root's own directory (0700): `size` random bytes, or a hole of that size
  // if `sparse` (a destination that holds nothing).
  Victim victim(const std::string& name, size_t size = 4096, bool sparse = false) {
    Victim v{dir_.file("root/" + name), ""};
    write_file(v.path, sparse ? std::vector<std::byte>() : random_bytes(size, 7));
    if (sparse) {
      EXPECT_EQ(::truncate(v.path.c_str(), static_cast<off_t>(size)), 0);
    }
    EXPECT_EQ(::chmod(v.path.c_str(), 0600), 0);
    v.digest = file_digest(v.path);
    return v;
  }
  void expect_untouched(const Victim& v, const std::string& cell) {
    struct stat st {};
    ASSERT_EQ(::lstat(v.path.c_str(), &st), 0) << cell << ": the victim was removed";
    EXPECT_TRUE(S_ISREG(st.st_mode)) << cell;
    EXPECT_EQ(file_digest(v.path), v.digest) << cell << ": the victim's bytes changed";
    EXPECT_EQ(st.st_mode & 07777, 0600u) << cell << ": the victim was chmodded";
    EXPECT_EQ(st.st_uid, 0u) << cell;
    char buf[256];
    EXPECT_LT(::lgetxattr(v.path.c_str(), kMetadataXattr, buf, sizeof buf), 0)
        << cell << ": root set its xattr on the victim";
    EXPECT_LT(::lgetxattr(v.path.c_str(), kCreatedImageXattr, buf, sizeof buf), 0) << cell;
  }
  // Plants `attack` at `name` (in a directory nobody owns), aimed at `v`.
  void plant(Attack attack, const std::string& name, const Victim& v) {
    CommandResult r;
    switch (attack) {
      case Attack::kSymlink:
        r = as_nobody("ln -s " + shell_quote(v.path) + " " + shell_quote(name));
        break;
      case Attack::kHardLink:  // by root: see the header
        r = run("ln " + shell_quote(v.path) + " " + shell_quote(name));
        break;
      case Attack::kFifo:
        r = as_nobody("mkfifo -m 666 " + shell_quote(name));
        break;
    }
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // nobody renames `dir` away and puts a symlink to root's directory in its place.
  void swap_for_root_directory(const std::string& dir) {
    CommandResult r =
        as_nobody("mv " + shell_quote(dir) + " " + shell_quote(dir + ".old") + " && ln -s " +
                  shell_quote(dir_.file("root")) + " " + shell_quote(dir));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string log_text(const std::string& log) { return run("cat " + shell_quote(log)).output; }
  bool mounted_under_test_dir() {
    return run("grep -q ' " + dir_.path() + "' /proc/mounts").exit_code == 0;
  }
  // Waits (up to 10 s) for a process this test's clonefs started to end.
  static void wait_gone(int pid) {
    for (int i = 0; i < 1000 && ::kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
};

TEST_F(HostileDirectoryTest, LogFileIsNeverFollowedNorAFifoNorAHardLink) {
  for (bool default_log : {false, true}) {
    for (Attack attack : kAttacks) {
      const std::string cell =
          std::string(default_log ? "META.log" : "--log-file") + " x " + name_of(attack);
      Victim v = victim("log");
      std::string metadata = meta(), log = svc("clone.log"), flags = "--log-file " + log;
      if (default_log) {  // the metadata in nobody's directory, so its default log is there too
        metadata = svc("meta.db");
        log = metadata + ".log";
        flags = "";
        ASSERT_EQ(run("cp " + shell_quote(meta()) + " " + shell_quote(metadata)).exit_code, 0);
      }
      plant(attack, log, v);
      MountedImage m(metadata, image(), flags, "timeout 20 ");
      EXPECT_FALSE(m.ok()) << cell << ": mounted";
      EXPECT_NE(m.result().output.find("log file " + log), std::string::npos)
          << cell << ": " << m.result().output;
      EXPECT_NE(m.result().output.find("refused"), std::string::npos)
          << cell << ": " << m.result().output;
      expect_untouched(v, cell);
      ASSERT_EQ(run("rm -f " + shell_quote(log) + " " + shell_quote(v.path)).exit_code, 0);
    }
  }
}

// The metrics file's temporary was PATH.tmp.<pid>: a name nobody can compute and plant first.
// Each cell waits for a rewrite (every 5 s): 4 mounts, about 25 s in all.
TEST_F(HostileDirectoryTest, MetricsFileTemporaryCannotBePlanted) {
  const std::string dir = svc("metrics"), file = dir + "/clone.prom";
  ASSERT_EQ(as_nobody("mkdir " + shell_quote(dir)).exit_code, 0);
  for (Attack attack : kAttacks) {
    const std::string cell = std::string("--metrics-file temporary x ") + name_of(attack);
    Victim v = victim("metrics");
    MountedImage m(meta(), image(), "--no-hydration --restart-limit 0 --metrics-file " + file);
    ASSERT_TRUE(m.ok()) << m.result().output;
    plant(attack, file + ".tmp." + std::to_string(m.daemon_pid()), v);
    std::this_thread::sleep_for(std::chrono::seconds(6));
    // Rewritten meanwhile (through a temporary of its own), so the planted name was not in use.
    EXPECT_EQ(run("grep -q clonefs_regions " + shell_quote(file)).exit_code, 0) << cell;
    CommandResult u = run("timeout 60 " + clonefs("unmount " + shell_quote(image())));
    EXPECT_EQ(u.exit_code, 0) << cell << ": " << u.output;
    expect_untouched(v, cell);
    ASSERT_EQ(
        run("rm -f " + shell_quote(dir) + "/clone.prom.tmp.* " + shell_quote(v.path)).exit_code, 0);
  }
  // The directory swapped for root's while mounted: the next rewrite is refused, not done there.
  Victim v = victim("clone.prom");
  MountedImage m(meta(), image(), "--no-hydration --metrics-file " + file);
  ASSERT_TRUE(m.ok()) << m.result().output;
  swap_for_root_directory(dir);
  std::this_thread::sleep_for(std::chrono::seconds(6));
  expect_untouched(v, "--metrics-file x directory swapped");
  EXPECT_EQ(m.unmount().exit_code, 0);
  expect_untouched(v, "--metrics-file x directory swapped (final write)");
  EXPECT_NE(log_text(meta() + ".log").find("is a symbolic link or not a directory: refused"),
            std::string::npos)
      << log_text(meta() + ".log");
}

// --record-profile rewrote the fixed PATH.new (every 10 s and at unmount).
TEST_F(HostileDirectoryTest, RecordedProfileTemporaryCannotBePlanted) {
  const std::string dir = svc("profile"), file = dir + "/clone.prof";
  ASSERT_EQ(as_nobody("mkdir " + shell_quote(dir)).exit_code, 0);
  for (Attack attack : kAttacks) {
    const std::string cell = std::string("--record-profile temporary x ") + name_of(attack);
    Victim v = victim("profile");
    plant(attack, file + ".new", v);
    MountedImage m(meta(), image(), "--no-hydration --record-profile " + file);
    ASSERT_TRUE(m.ok()) << m.result().output;
    CommandResult u = run("timeout 60 " + clonefs("unmount " + shell_quote(image())));
    EXPECT_EQ(u.exit_code, 0) << cell << ": " << u.output;
    EXPECT_EQ(run("head -1 " + shell_quote(file) + " | grep -q clonefs-profile").exit_code, 0)
        << cell << ": the profile was not written";
    expect_untouched(v, cell);
    ASSERT_EQ(run("rm -f " + shell_quote(file) + "* " + shell_quote(v.path)).exit_code, 0);
  }
  Victim v = victim("clone.prof");
  MountedImage m(meta(), image(), "--no-hydration --record-profile " + file);
  ASSERT_TRUE(m.ok()) << m.result().output;
  swap_for_root_directory(dir);
  EXPECT_EQ(m.unmount().exit_code, 0);
  expect_untouched(v, "--record-profile x directory swapped");
  EXPECT_FALSE(std::filesystem::exists(dir_.file("root/clone.prof.new")));
  EXPECT_NE(log_text(meta() + ".log").find("cannot write the access profile"), std::string::npos)
      << log_text(meta() + ".log");
}

TEST_F(HostileDirectoryTest, ImageIsNeverASymlinkAHardLinkOrAFifo) {
  for (Attack attack : kAttacks) {
    const std::string cell = std::string("IMAGE x ") + name_of(attack);
    Victim v = victim("image");
    const std::string target = svc("disk.img");
    plant(attack, target, v);
    MountedImage m(meta(), target, "--no-hydration", "timeout 20 ");
    EXPECT_FALSE(m.ok()) << cell << ": mounted";
    EXPECT_NE(m.result().output.find("image " + target), std::string::npos)
        << cell << ": " << m.result().output;
    EXPECT_FALSE(mounted_under_test_dir()) << cell << ": " << run("cat /proc/mounts").output;
    expect_untouched(v, cell);
    ASSERT_EQ(run("rm -f " + shell_quote(target) + " " + shell_quote(v.path)).exit_code, 0);
  }
}

// Hole 3: IMAGE's directory renamed and replaced by a symlink to root's directory while mounted;
// at the daemon's end root removed root/disk.img. Both with and without the supervisor.
TEST_F(HostileDirectoryTest, CreatedImageIsRemovedOnlyWhereItWasCreated) {
  for (bool supervised : {false, true}) {
    const std::string cell = supervised ? "IMAGE x directory swapped (supervised)"
                                        : "IMAGE x directory swapped (--restart-limit 0)";
    const std::string sub = svc("sub"), target = sub + "/disk.img";
    ASSERT_EQ(as_nobody("mkdir " + shell_quote(sub)).exit_code, 0);
    Victim v = victim("disk.img", 0);
    MountedImage m(meta(), target,
                   supervised ? "--no-hydration" : "--no-hydration --restart-limit 0");
    ASSERT_TRUE(m.ok()) << m.result().output;
    const int pid = supervised ? m.supervisor_pid() : m.daemon_pid();
    ASSERT_GT(pid, 0);
    swap_for_root_directory(sub);
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    wait_gone(pid);
    expect_untouched(v, cell);
    EXPECT_FALSE(mounted_under_test_dir()) << cell << ": " << run("cat /proc/mounts").output;
    EXPECT_FALSE(std::filesystem::exists(sub + ".old/disk.img"))
        << cell << ": the created file was left behind";
    run("grep -o ' " + dir_.path() + "[^ ]*' /proc/mounts | xargs -r -n1 umount -l");
    ASSERT_EQ(run("rm -rf " + shell_quote(sub) + " " + shell_quote(sub + ".old") + " " +
                  shell_quote(v.path))
                  .exit_code,
              0);
  }
}

// DEST at create: a symlink or hard link at its name, aimed at a root file of the right size that
// holds nothing (so the old checks let it through), was taken as the destination.
TEST_F(HostileDirectoryTest, DestinationAtCreateIsNeverAPlantedLink) {
  for (Attack attack : kAttacks) {
    const std::string cell = std::string("DEST at create x ") + name_of(attack);
    Victim v = victim("dest", 1 << 20, true);
    const std::string dest = svc("dest.img"), metadata = dir_.file("other.db");
    plant(attack, dest, v);
    CommandResult r =
        run("timeout 20 " + clonefs("create --source " + shell_quote(source()) + " --dest " +
                                    shell_quote(dest) + " --metadata " + shell_quote(metadata)));
    EXPECT_NE(r.exit_code, 0) << cell << ": " << r.output;
    EXPECT_NE(r.output.find(dest), std::string::npos) << cell << ": " << r.output;
    expect_untouched(v, cell);
    ASSERT_EQ(
        run("rm -f " + shell_quote(dest) + " " + shell_quote(metadata) + "* " + shell_quote(v.path))
            .exit_code,
        0);
  }
}

// META at create --force: a plant at META is replaced as a name (the new database renamed over
// it), and the temporary SQLite writes is no longer the fixed META.new. Nothing refuses here; the
// victim must simply come out untouched (and the command must not hang on a FIFO).
TEST_F(HostileDirectoryTest, MetadataAtCreateIsNeverWrittenThroughAPlant) {
  for (bool temporary : {false, true}) {
    for (Attack attack : kAttacks) {
      const std::string cell =
          std::string(temporary ? "META.new" : "META") + " at create x " + name_of(attack);
      Victim v = victim("meta");
      const std::string metadata = svc("new.db"), dest = dir_.file("new.img");
      plant(attack, temporary ? metadata + ".new" : metadata, v);
      CommandResult r = run(
          "timeout 20 " + clonefs("create --force --source " + shell_quote(source()) + " --dest " +
                                  shell_quote(dest) + " --metadata " + shell_quote(metadata)));
      EXPECT_NE(r.exit_code, 124) << cell << ": hung";
      expect_untouched(v, cell);
      ASSERT_EQ(run("rm -f " + shell_quote(metadata) + "* " + shell_quote(dest) + " " +
                    shell_quote(v.path))
                    .exit_code,
                0);
    }
  }
}

// SQLite opens META-wal and META-shm by name and writes or truncates them. The metadata lies in a
// sticky directory everyone can write: in nobody's own directory it is refused before its -wal
// and -shm are looked at (TrustedMetadataTest), in a sticky one it is trusted and nobody can still
// plant the names beside it.
TEST_F(HostileDirectoryTest, MetadataWalAndShmAreNeverPlantedFiles) {
  const std::string metadata = sticky("meta.db");
  ASSERT_EQ(run("cp " + shell_quote(meta()) + " " + shell_quote(metadata)).exit_code, 0);
  for (const char* suffix : {"-wal", "-shm"}) {
    for (Attack attack : kAttacks) {
      const std::string cell = std::string("META") + suffix + " x " + name_of(attack);
      Victim v = victim("wal", 32768);
      plant(attack, metadata + suffix, v);
      MountedImage m(metadata, image(), "--no-hydration --log-file " + dir_.file("wal.log"),
                     "timeout 20 ");
      EXPECT_FALSE(m.ok()) << cell << ": mounted";
      CommandResult status = run("timeout 20 " + clonefs("status " + shell_quote(metadata)));
      EXPECT_NE(status.exit_code, 0) << cell << ": " << status.output;
      EXPECT_NE(m.result().output.find(metadata + suffix), std::string::npos)
          << cell << ": " << m.result().output;
      expect_untouched(v, cell);
      ASSERT_EQ(
          run("rm -f " + shell_quote(metadata + suffix) + " " + shell_quote(v.path)).exit_code, 0);
    }
  }
}

// Hole 4: a clone of a 0600 source is no more readable than it.
TEST_F(HostileDirectoryTest, ClonesOfAPrivateSourceArePrivate) {
  ASSERT_EQ(::chmod(source().c_str(), 0600), 0);
  const std::string dest = dir_.file("private.img"), metadata = dir_.file("private.db");
  CommandResult r = run(clonefs("create --source " + shell_quote(source()) + " --dest " +
                                shell_quote(dest) + " --metadata " + shell_quote(metadata)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("permissions 0600"), std::string::npos) << r.output;
  struct stat st {};
  ASSERT_EQ(::stat(dest.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "DEST";
  MountedImage m(metadata, image(), "--no-hydration -o allow_other");
  ASSERT_TRUE(m.ok()) << m.result().output;
  ASSERT_EQ(::stat(image().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "IMAGE";
  EXPECT_NE(as_nobody("head -c1 " + shell_quote(image())).exit_code, 0);
  EXPECT_NE(as_nobody("head -c1 " + shell_quote(dest)).exit_code, 0);
}

}  // namespace
}  // namespace clonefs::testing
