// Issue #12: the network and the server fail. nbdkit filters inject errors and delays; the server
// is killed and restarted on the same socket; bad URIs and vanished exports are refused.
#include <signal.h>

#include <filesystem>

#include "mount/nbd_fixture.h"

namespace clonefs::testing {
namespace {

using Clock = std::chrono::steady_clock;

TEST_F(NbdMount, ServerKilledMidHydrationAndRestartedHydrationCompletes) {
  write_file(source(), random_bytes(48 * kMiB, 21));
  auto server = serve_file(source(), {"--filter=delay", "delay-read=2ms"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount("--rate 8M");
  CloneStatus s = wait_status([](const CloneStatus& s) { return s.regions_valid > 0; });
  ASSERT_GT(s.regions_valid, 0u);
  server->kill();
  s = wait_status([](const CloneStatus& s) {
    return s.source_connection && s.source_connection->state == "reconnecting";
  });
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_EQ(s.source_connection->state, "reconnecting");
  EXPECT_EQ(s.source_connection->connections, 0u);
  ASSERT_TRUE(s.hydration.has_value());
  EXPECT_EQ(s.hydration->state, "idle");
  EXPECT_NE(s.hydration->state_reason.find("unreachable"), std::string::npos)
      << s.hydration->state_reason;
  // Waiting, not failing region after region.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  s = status_json(image());
  EXPECT_EQ(s.hydration->failed_regions, 0u);
  EXPECT_FALSE(s.complete);

  ASSERT_TRUE(server->start());
  ASSERT_EQ(run(clonefs("hydrate --rate 0 " + shell_quote(image()))).exit_code, 0);
  hydrate_wait();
  // Each reconnection reads the source's fingerprint first: the last ones may still be checking.
  s = wait_status([](const CloneStatus& s) {
    return s.source_connection && s.source_connection->state == "connected";
  });
  EXPECT_EQ(s.hydration->failed_regions, 0u);
  EXPECT_EQ(s.source_connection->state, "connected");
  EXPECT_GE(s.source_connection->reconnects, 1u);
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
}

TEST_F(NbdMount, ReadsFailAfterTheTimeoutAndUnmountIsPromptWhileTheServerIsDown) {
  write_file(source(), random_bytes(32 * kMiB, 22));
  auto server = serve_file(source());
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount("--source-timeout 1 --rate 1M");
  server->kill();
  // A user read of a region not yet copied: EIO after about --source-timeout, not a hang.
  const auto before = Clock::now();
  CommandResult read =
      run("dd status=none iflag=direct bs=64K count=1 skip=400 if=" + shell_quote(image()) +
          " of=/dev/null");
  const auto waited = Clock::now() - before;
  EXPECT_NE(read.exit_code, 0);
  EXPECT_NE(read.output.find("Input/output error"), std::string::npos) << read.output;
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  CloneStatus s = status_json(image());
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_EQ(s.source_connection->state, "reconnecting");

  const auto unmount_start = Clock::now();
  unmount();
  EXPECT_LT(Clock::now() - unmount_start, std::chrono::seconds(2));
}

// Hydration copies are in flight when the server dies; with the default --source-timeout (30 s)
// they would hold the unmount that long.
TEST_F(NbdMount, UnmountWithCopiesInFlightIsPromptWhileTheServerIsDown) {
  write_file(source(), random_bytes(64 * kMiB, 28));
  auto server = serve_file(source(), {"--filter=delay", "delay-read=50ms"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount();
  CloneStatus s = wait_status([](const CloneStatus& s) { return s.regions_in_flight > 0; });
  ASSERT_GT(s.regions_in_flight, 0u);
  server->kill();
  const auto unmount_start = Clock::now();
  unmount();
  EXPECT_LT(Clock::now() - unmount_start, std::chrono::seconds(2));
}

TEST_F(NbdMount, ServerErrorsFailReadsAtOnceAndRegionsThatKeepFailingAreReported) {
  write_file(source(), random_bytes(8 * kMiB, 23));
  const std::string trigger = dir_.file("errors-on");
  // --log=null: nbdkit would log every error it injects.
  auto server = serve_file(source(), {"--log=null", "--filter=error", "error-pread=EIO",
                                      "error-pread-rate=100%", "error-pread-file=" + trigger});
  // 1 MiB regions: each failing region costs its retries' backoff.
  ASSERT_EQ(create_from(server->uri(), "--region-size 1M").exit_code, 0);
  mount("--no-hydration --source-timeout 20");
  write_file(trigger, {});
  const auto before = Clock::now();
  CommandResult read =
      run("dd status=none iflag=direct bs=64K count=1 skip=40 if=" + shell_quote(image()) +
          " of=/dev/null");
  EXPECT_NE(read.exit_code, 0);
  // The server answered (with an error): no waiting for a reconnect.
  EXPECT_LT(Clock::now() - before, std::chrono::seconds(10));
  ASSERT_EQ(run(clonefs("hydrate --resume " + shell_quote(image()))).exit_code, 0);
  CloneStatus s = wait_status([](const CloneStatus& s) {
    return s.hydration && s.hydration->state == "idle" && s.hydration->failed_regions > 0;
  });
  ASSERT_TRUE(s.hydration.has_value());
  EXPECT_EQ(s.hydration->state, "idle") << s.hydration->state_reason;
  EXPECT_GT(s.hydration->failed_regions, 0u);
  EXPECT_EQ(s.source_connection->state, "connected");

  std::filesystem::remove(trigger);
  EXPECT_EQ(run("dd status=none iflag=direct bs=64K count=1 skip=40 if=" + shell_quote(image()) +
                " of=/dev/null")
                .exit_code,
            0);
  unmount();
}

TEST_F(NbdMount, DelayedServerStillClonesExactly) {
  write_file(source(), random_bytes(8 * kMiB, 24));
  auto server = serve_file(source(), {"--filter=delay", "delay-read=10ms"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount();
  EXPECT_TRUE(same_content(image(), source()));
  hydrate_wait();
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
}

TEST_F(NbdMount, ARestartedServerWithOtherDataOrSizeIsRefusedAtTheNextMount) {
  write_file(source(), random_bytes(8 * kMiB, 25));
  auto server = serve_file(source());
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  const std::string meta_digest = file_digest(meta());
  server->kill();

  const std::string other = dir_.file("other.img");
  write_file(other, random_bytes(8 * kMiB, 26));
  server->set_argv({"nbdkit", "-f", "-U", "{socket}", "file", "file=" + other});
  ASSERT_TRUE(server->start());
  CommandResult changed =
      run(clonefs("mount --metadata " + shell_quote(meta()) + " " + shell_quote(image())));
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_NE(changed.output.find("has changed"), std::string::npos) << changed.output;
  server->kill();

  write_file(other, random_bytes(9 * kMiB, 26));
  ASSERT_TRUE(server->start());
  CommandResult resized =
      run(clonefs("mount --metadata " + shell_quote(meta()) + " " + shell_quote(image())));
  EXPECT_NE(resized.exit_code, 0);
  EXPECT_NE(resized.output.find("not the same image"), std::string::npos) << resized.output;
  EXPECT_EQ(file_digest(meta()), meta_digest);
  EXPECT_FALSE(std::filesystem::exists(image()));
}

// Issue #26, hole 2: a server killed and restarted with other data of the same size. Its bytes
// must never be used: reads wait and then fail, hydration stops saying why, finalize refuses;
// once the original data is served again the clone completes with nothing of the other in DEST.
TEST_F(NbdMount, AServerRestartedWithOtherDataIsRefusedAndNothingOfItReachesTheDestination) {
  write_file(source(), random_bytes(16 * kMiB, 31));
  const std::string other = dir_.file("other.img");
  write_file(other, random_bytes(16 * kMiB, 32));
  auto server = serve_file(source());
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount("--rate 1M --source-timeout 2");
  CloneStatus s = wait_status([](const CloneStatus& s) { return s.regions_valid > 0; });
  ASSERT_GT(s.regions_valid, 0u);
  server->kill();
  server->set_argv({"nbdkit", "-f", "-U", "{socket}", "file", "file=" + other});
  ASSERT_TRUE(server->start());
  ASSERT_EQ(run(clonefs("hydrate --rate 0 " + shell_quote(image()))).exit_code, 0);
  s = wait_status([](const CloneStatus& s) {
    return s.complete || (s.hydration && s.hydration->state_reason.find("the source changed") !=
                                             std::string::npos);
  });
  ASSERT_TRUE(s.hydration.has_value());
  EXPECT_FALSE(s.complete);
  EXPECT_NE(s.hydration->state_reason.find("the source changed"), std::string::npos)
      << s.hydration->state_reason;
  ASSERT_TRUE(s.source_connection.has_value());
  EXPECT_EQ(s.source_connection->state, "changed");
  EXPECT_EQ(s.hydration->failed_regions, 0u);
  // A region not hydrated yet: the read waits for the original server, then fails.
  CommandResult read =
      run("dd status=none iflag=direct bs=64K count=1 skip=250 if=" + shell_quote(image()) +
          " of=/dev/null");
  EXPECT_NE(read.exit_code, 0);
  EXPECT_NE(read.output.find("Input/output error"), std::string::npos) << read.output;
  unmount();
  CommandResult finalize = run(clonefs("finalize --metadata " + shell_quote(meta())));
  EXPECT_NE(finalize.exit_code, 0) << finalize.output;

  server->kill();
  server->set_argv({"nbdkit", "-f", "-U", "{socket}", "file", "file=" + source()});
  ASSERT_TRUE(server->start());
  mount();
  hydrate_wait();
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
  EXPECT_EQ(run(clonefs("finalize --metadata " + shell_quote(meta()))).exit_code, 0);
}

// Issue #26, hole 3: nbdkit on SIGTERM answers every request with ESHUTDOWN and exits once its
// clients are gone. That is an outage: clonefs lets it go at once, a read waits for the restarted
// server, no region is failed for it, and hydration completes exactly.
TEST_F(NbdMount, AServerShuttingDownIsAnOutageAndHydrationCompletesOnceItIsBack) {
  write_file(source(), random_bytes(32 * kMiB, 33));
  auto server = serve_file(source(), {"--filter=delay", "delay-read=2ms"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount("--rate 8M --source-timeout 20");
  CloneStatus s = wait_status([](const CloneStatus& s) { return s.regions_valid > 0; });
  ASSERT_GT(s.regions_valid, 0u);
  server->signal(SIGTERM);
  // A user read of a region not hydrated yet, while the server shuts down.
  CommandResult read;
  std::thread reader([&] {
    read = run("dd status=none iflag=direct bs=64K count=1 skip=500 if=" + shell_quote(image()) +
               " of=/dev/null");
  });
  const bool exited = server->wait_exit(std::chrono::seconds(10));
  EXPECT_TRUE(exited) << "nbdkit still waits for clonefs to disconnect";
  if (!exited) server->kill();
  s = status_json(image());
  ASSERT_TRUE(s.hydration.has_value());
  EXPECT_EQ(s.hydration->failed_regions, 0u);
  ASSERT_TRUE(server->start());
  reader.join();
  EXPECT_EQ(read.exit_code, 0) << read.output;
  ASSERT_EQ(run(clonefs("hydrate --rate 0 " + shell_quote(image()))).exit_code, 0);
  hydrate_wait();
  s = status_json(image());
  EXPECT_EQ(s.hydration->failed_regions, 0u);
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
}

// Issue #26: a server whose block status says "zeros" for extents that read as data (nbdkit's
// eval plugin, scripted to lie). Trusting it, hydration skipped them and DEST held zeros where
// the image had shown the source's data.
TEST_F(NbdMount, LyingBlockStatusCannotMakeTheDestinationDiffer) {
  write_file(source(), random_bytes(8 * kMiB, 34));
  auto server = nbdkit(
      {"--log=null", "eval", "get_size=echo " + std::to_string(8 * kMiB),
       "thread_model=echo parallel",
       "pread=dd if=" + source() + " iflag=skip_bytes,count_bytes skip=$4 count=$3 status=none",
       "can_extents=exit 0", "extents=echo $4 $3 zero"});
  ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  mount();
  hydrate_wait();
  unmount();
  EXPECT_TRUE(same_content(dest(), source()));
}

// The bad-input table for URIs: one clear message each, nothing created or changed.
TEST_F(NbdMount, BadUrisUnreachableSocketsAndVanishedExportsAreRefusedClearly) {
  write_file(source(), random_bytes(4 * kMiB, 27));
  const std::string d2 = dir_.file("d2"), m2 = dir_.file("m2");
  struct Case {
    std::string name, uri, needle;
  };
  const std::vector<Case> cases = {
      {"malformed", "nbd://[::1/x", "nbd://[::1/x"},
      {"unsupported scheme", "s3://bucket/golden.img", "presigned https://"},
      {"unix without socket", "nbd+unix:///golden", "socket="},
      {"unreachable socket", "nbd+unix:///?socket=" + dir_.file("nobody.sock"), "nobody.sock"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    CommandResult r = run(clonefs("create --source " + shell_quote(c.uri) + " --dest " +
                                  shell_quote(d2) + " --metadata " + shell_quote(m2)));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
    EXPECT_FALSE(std::filesystem::exists(d2));
    EXPECT_FALSE(std::filesystem::exists(m2));
  }

  // An export that vanishes between create and mount.
  {
    auto server = serve_file(source());
    ASSERT_EQ(create_from(server->uri()).exit_code, 0);
  }
  const std::string meta_digest = file_digest(meta());
  CommandResult gone =
      run(clonefs("mount --metadata " + shell_quote(meta()) + " " + shell_quote(image())));
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.output.find(socket()), std::string::npos) << gone.output;
  EXPECT_LE(std::count(gone.output.begin(), gone.output.end(), '\n'), 2) << gone.output;
  EXPECT_EQ(file_digest(meta()), meta_digest);
  EXPECT_FALSE(std::filesystem::exists(image()));
}

}  // namespace
}  // namespace clonefs::testing
