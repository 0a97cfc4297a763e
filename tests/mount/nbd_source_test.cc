// Issue #12: sources served over NBD, through real servers and real mounts: clone, read, write,
// hydrate, finalize; sparse exports; qcow2 through qemu-nbd; secrets kept out of what is written.
#include "io/nbd_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "io/fingerprint.h"
#include "io/posix_devices.h"
#include "io/source_uri.h"
#include "mount/nbd_fixture.h"

namespace clonefs::testing {
namespace {

TEST_F(NbdMount, FileExportIsClonedHydratedAndFinalizedWithoutWritingTheExport) {
  write_file(source(), random_bytes(16 * kMiB, 12));
  const std::string source_digest = file_digest(source());
  auto server = serve_file(source());
  CommandResult created = create_from(server->uri());
  ASSERT_EQ(created.exit_code, 0) << created.output;
  mount("--no-hydration");
  EXPECT_TRUE(same_content(image(), source()));
  CloneStatus s = status_json(image());
  EXPECT_EQ(s.source, server->uri());
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_EQ(s.source_connection->state, "connected");
  EXPECT_GE(s.source_connection->connections, 1u);

  // A write lands in the destination only; the export (served read-write) never changes.
  const std::string expected = dir_.file("expected.img");
  std::filesystem::copy_file(source(), expected);
  write_file(dir_.file("patch"), random_bytes(3 * 65536 + 100, 99));
  for (const std::string& target : {image(), expected}) {
    CommandResult dd = run("dd status=none conv=notrunc,fsync bs=4096 seek=300 if=" +
                           shell_quote(dir_.file("patch")) + " of=" + shell_quote(target));
    ASSERT_EQ(dd.exit_code, 0) << dd.output;
  }
  EXPECT_TRUE(same_content(image(), expected));
  ASSERT_EQ(run(clonefs("hydrate --resume " + shell_quote(image()))).exit_code, 0);
  hydrate_wait();
  unmount();
  CommandResult finalize = run(clonefs("finalize --metadata " + shell_quote(meta())));
  ASSERT_EQ(finalize.exit_code, 0) << finalize.output;
  EXPECT_TRUE(same_content(dest(), expected));
  EXPECT_EQ(file_digest(source()), source_digest);
}

TEST_F(NbdMount, SparseExportsStaySparseInTheDestination) {
  // A sparse file through the file plugin: 256 MiB, 4 MiB of data.
  int fd = ::open(source().c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 256 * kMiB), 0);
  for (int i = 0; i < 4; ++i) {
    auto data = random_bytes(kMiB, static_cast<uint64_t>(i) + 40);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(i * 60 * kMiB)),
              static_cast<ssize_t>(kMiB));
  }
  ::close(fd);
  {
    auto server = serve_file(source());
    ASSERT_EQ(create_from(server->uri()).exit_code, 0);
    mount();
    hydrate_wait();
    unmount();
    EXPECT_TRUE(same_content(dest(), source()));
    // Block status is not trusted (see LyingBlockStatusCannotMakeTheDestinationDiffer): the
    // holes are read, found zero and left sparse.
    EXPECT_LE(allocated_bytes(dest()), 5 * kMiB) << "holes were copied";
  }

  // sparse-random: data runs scattered over zeros, known only by reading them back.
  std::filesystem::remove(dest());
  std::filesystem::remove(meta());
  auto server = nbdkit({"sparse-random", "size=256M", "percent=3", "runlength=262144", "seed=7"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount();
  hydrate_wait();
  unmount();
  auto bytes = read_file(dest());
  ASSERT_EQ(bytes.size(), 256 * kMiB);
  uint64_t data_units = 0;  // 16 KiB units (the region size) holding a non-zero byte
  for (size_t at = 0; at < bytes.size(); at += 16384) {
    for (size_t i = at; i < at + 16384; ++i) {
      if (bytes[i] != std::byte{0}) {
        ++data_units;
        break;
      }
    }
  }
  EXPECT_GT(data_units, 0u);
  EXPECT_LE(allocated_bytes(dest()), data_units * 16384 + kMiB)
      << data_units << " regions of data; the zeros between them were written";
}

// A server without block status (the noextents filter hides it): every byte is read, and the
// zeros still stay out of the destination.
TEST_F(NbdMount, WithoutBlockStatusZerosAreFoundInTheData) {
  int fd = ::open(source().c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 64 * kMiB), 0);
  auto data = random_bytes(2 * kMiB, 41);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 30 * kMiB), static_cast<ssize_t>(data.size()));
  ::close(fd);
  auto server = serve_file(source(), {"--filter=noextents"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount();
  hydrate_wait();
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
  EXPECT_LE(allocated_bytes(dest()), 3 * kMiB) << "zeros were written";
}

TEST_F(NbdMount, Qcow2ServedByQemuNbdReadsAsItsGuestView) {
  int fd = ::open(source().c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 32 * kMiB), 0);
  auto data = random_bytes(3 * kMiB, 5);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 7 * kMiB), static_cast<ssize_t>(data.size()));
  ::close(fd);
  const std::string qcow2 = dir_.file("golden.qcow2");
  CommandResult convert =
      run("qemu-img convert -f raw -O qcow2 " + shell_quote(source()) + " " + shell_quote(qcow2));
  ASSERT_EQ(convert.exit_code, 0) << convert.output;
  // qemu-nbd's default --shared=1: one client only, so the extra connections are given up.
  // --persistent: it would exit when create's connection closes.
  NbdServer server(
      {"qemu-nbd", "-r", "--persistent", "-f", "qcow2", "-k", "{socket}", "-x", "golden", qcow2},
      socket());
  ASSERT_TRUE(server.running());
  ASSERT_EQ(create_from(server.uri("golden")).exit_code, 0);
  mount();
  EXPECT_TRUE(same_content(image(), source()));
  hydrate_wait();
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_GE(s.source_connection->connections, 1u);
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
}

// The fingerprint's pieces are read from an NBD source all at once (read_extents: one round trip,
// not 66); the bytes must land as a file source's one-by-one reads put them, pieces that overlap
// and cross the client's request size included.
TEST_F(NbdMount, ExtentsReadAllAtOnceLandInOrderAndTheFingerprintIsTheFiles) {
  write_file(source(), random_bytes(40 * kMiB + 12345, 21));
  auto server = serve_file(source());
  auto file = open_source(source());
  ASSERT_TRUE(file) << file.status().message();
  auto nbd = open_nbd_source(server->uri(), NbdSourceOptions{.connections = 2});
  ASSERT_TRUE(nbd) << nbd.status().message();

  auto by_file = source_fingerprint(**file);
  auto by_nbd = source_fingerprint(**nbd);
  ASSERT_TRUE(by_file && by_nbd);
  EXPECT_EQ(*by_nbd, *by_file);

  const std::vector<Extent> extents = {{5 * kMiB, 5 * kMiB + 3 * kMiB + 7},
                                       {0, 1},
                                       {5 * kMiB + 100, 5 * kMiB + 200},
                                       {40 * kMiB, 40 * kMiB + 12345},
                                       {17, 17}};
  uint64_t total = 0;
  for (const Extent& e : extents) total += e.length();
  std::vector<std::byte> batch(total);
  ASSERT_TRUE((*nbd)->read_extents(extents, batch));
  std::vector<std::byte> one_by_one(total);
  ASSERT_TRUE((*file)->SourceDevice::read_extents(extents, one_by_one));
  EXPECT_TRUE(batch == one_by_one);

  const Extent past_the_end[] = {{40 * kMiB, 40 * kMiB + 12346}};
  std::vector<std::byte> one(12346);
  Status refused = (*nbd)->read_extents(past_the_end, one);
  EXPECT_EQ(refused.code(), EIO) << refused.message();
}

TEST_F(NbdMount, SecretsInTheUriAreNeverWrittenInClear) {
  write_file(source(), random_bytes(4 * kMiB, 8));
  auto server = serve_file(source());
  const std::string uri = server->uri() + "&password=hunter2";
  CommandResult created = create_from(uri);
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_EQ(created.output.find("hunter2"), std::string::npos) << created.output;
  EXPECT_EQ(run("grep -c hunter2 " + shell_quote(meta())).output, "0\n");

  // Without the full URI the mount cannot reconnect, and says how to give it.
  CommandResult refused =
      run(clonefs("mount --metadata " + shell_quote(meta()) + " " + shell_quote(image())));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find(kSourceUriVariable), std::string::npos) << refused.output;

  mounted_ = std::make_unique<MountedImage>(
      meta(), image(), "", std::string(kSourceUriVariable) + "=" + shell_quote(uri) + " ");
  ASSERT_TRUE(mounted_->ok()) << mounted_->result().output;
  EXPECT_TRUE(same_content(image(), source()));
  CommandResult status = run(clonefs("status --json " + shell_quote(image())));
  EXPECT_EQ(status.output.find("hunter2"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("password=***"), std::string::npos) << status.output;
  unmount();
  // Nor in the metadata after the mount's commits, nor in the daemon's log.
  EXPECT_EQ(
      run("grep -l hunter2 " + shell_quote(meta()) + " " + shell_quote(meta() + ".log")).output,
      "");
}

// Issue #25, hole 6: `create` takes the URI from CLONEFS_SOURCE_URI, so a password is in no
// argv; and nbds:// with tls-psk-file (a local file libnbd reads only when allowed) works.
TEST_F(NbdMount, TlsPskSourceFromTheEnvironmentOnly) {
  write_file(source(), random_bytes(4 * kMiB, 9));
  const std::string psk = dir_.file("psk");
  ASSERT_EQ(run("printf 'alice:%s\\n' $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n') > " +
                shell_quote(psk) + " && chmod 600 " + shell_quote(psk))
                .exit_code,
            0);
  auto server = serve_file(source(), {"--tls=require", "--tls-psk=" + psk});
  ASSERT_TRUE(server->running());
  const std::string uri = "nbds+unix://alice@/?socket=" + server->socket() +
                          "&tls-psk-file=" + psk + "&password=hunter2";
  const std::string env = std::string(kSourceUriVariable) + "=" + shell_quote(uri) + " ";
  CommandResult created = run(
      env + clonefs("create --dest " + shell_quote(dest()) + " --metadata " + shell_quote(meta())));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_EQ(created.output.find("hunter2"), std::string::npos) << created.output;
  EXPECT_NE(created.output.find("password=***"), std::string::npos) << created.output;
  mounted_ = std::make_unique<MountedImage>(meta(), image(), "", env);
  ASSERT_TRUE(mounted_->ok()) << mounted_->result().output;
  EXPECT_TRUE(same_content(image(), source()));
  unmount();
  // Neither --source nor the variable: told both ways.
  CommandResult neither = run("env -u " + std::string(kSourceUriVariable) + " " +
                              clonefs("create --dest " + shell_quote(dir_.file("d2")) +
                                      " --metadata " + shell_quote(dir_.file("m2"))));
  EXPECT_EQ(neither.exit_code, 2) << neither.output;
  EXPECT_NE(neither.output.find(kSourceUriVariable), std::string::npos) << neither.output;
}

// A password holding an unencoded '/' made the URI unparsable for libnbd, whose message quoted it
// whole, and the first redact_uri missed it (the authority ended at the '/').
TEST_F(NbdMount, AnUnparsableUriIsNeverPrintedWithItsPassword) {
  for (const std::string uri : {"nbds://alice:pa/ss@localhost:1/g", "nbds://alice:x?y#z@[::1/g",
                                "nbd://h/g?tls-username=a;password=sw0rdfish"}) {
    CommandResult created = create_from(uri);
    EXPECT_NE(created.exit_code, 0) << created.output;
    for (const char* secret : {"pa/ss", "x?y#z", "sw0rdfish"})
      EXPECT_EQ(created.output.find(secret), std::string::npos) << created.output;
  }
}

}  // namespace
}  // namespace clonefs::testing
