// clonefs_exerciser: random reads, writes, mmap reads and writes, punch hole, zero range,
// copy_file_range and syncs on a file of fixed size (a mounted clone's IMAGE), each read checked
// against a model that starts as the source's bytes. In the manner of xfstests' fsx.
//
//   clonefs_exerciser --source SOURCE [--seed N] [--ops N] [--seconds S] [--no-mmap] [--direct]
//                     [--log FILE] [--model-out FILE] IMAGE
//   clonefs_exerciser --source SOURCE --verify MODEL [--log FILE] IMAGE
//
// Exit status: 0 when every byte matched, 1 on a mismatch or a failed call (with the operation,
// the log's tail and the command that replays it), 2 on bad arguments.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "exerciser.h"
#include "model.h"
#include "operation.h"

namespace clonefs::exerciser {
namespace {

struct Arguments {
  std::string image, source, log, model_out, verify;
  uint64_t seed = 0, ops = 0, max_length = 64 * 1024;  // fsx's default
  double seconds = 0;
  bool no_mmap = false, direct = false;
  std::string self;
};

bool read_whole(const std::string& path, std::vector<uint8_t>& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

std::string replay_command(const Arguments& a, uint64_t ops) {
  return a.self + " --source '" + a.source + "' --seed " + std::to_string(a.seed) + " --ops " +
         std::to_string(ops) + " --max-length " + std::to_string(a.max_length) +
         (a.no_mmap ? " --no-mmap" : "") + (a.direct ? " --direct" : "") + " '" + a.image +
         "'   (on a fresh clone of the source)";
}

std::string summary(const std::array<uint64_t, kOpKinds>& counts) {
  std::string text;
  for (size_t i = 0; i < counts.size(); ++i) {
    text += (i ? ", " : "") + std::string(kind_name(static_cast<OpKind>(i))) + " " +
            std::to_string(counts[i]);
  }
  return text;
}

int report_failure(const Arguments& a, const Model& model, uint64_t number,
                   const std::string& what) {
  std::printf("FAILED at operation %llu (seed %llu): %s\nlast operations:\n%sreplay: %s\n",
              static_cast<unsigned long long>(number), static_cast<unsigned long long>(a.seed),
              what.c_str(), model.log_tail(20).c_str(), replay_command(a, number).c_str());
  return 1;
}

int run_operations(const Arguments& a, std::vector<uint8_t> source) {
  Model model(std::move(source));
  Exerciser exerciser(a.image, model, a.direct, a.max_length);
  if (!exerciser.open_error().empty()) {
    std::fprintf(stderr, "clonefs_exerciser: %s\n", exerciser.open_error().c_str());
    return 2;
  }
  std::FILE* log = a.log.empty() ? nullptr : std::fopen(a.log.c_str(), "w");
  // Line by line: a run killed because it hung leaves the operation it hung in as the last line.
  if (log) std::setvbuf(log, nullptr, _IOLBF, 0);
  GeneratorOptions options{.file_size = model.size(),
                           .max_length = a.max_length,
                           .mmap = !a.no_mmap,
                           .direct = a.direct};
  std::mt19937_64 rng(a.seed);
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  uint64_t number = 0;
  std::string failure;
  while ((a.ops == 0 || number < a.ops) && (a.seconds <= 0 || elapsed() < a.seconds)) {
    Operation op = next_operation(rng, ++number, options);
    if (log) std::fprintf(log, "%s\n", format_operation(op).c_str());
    failure = exerciser.run(op);
    if (!failure.empty()) break;
  }
  if (failure.empty()) failure = exerciser.check_whole_file();
  if (log) std::fclose(log);
  if (!failure.empty()) return report_failure(a, model, number, failure);
  std::printf("%llu operations in %.1f s (%s), every byte as expected\n",
              static_cast<unsigned long long>(number), elapsed(),
              summary(exerciser.counts()).c_str());
  if (!a.model_out.empty()) {
    std::ofstream out(a.model_out, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(model.data()),
              static_cast<std::streamsize>(model.size()));
    if (!out.flush()) return std::fprintf(stderr, "cannot write %s\n", a.model_out.c_str()), 2;
  }
  return 0;
}

std::vector<Operation> read_log(const std::string& path) {
  std::vector<Operation> ops;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (auto op = parse_operation(line)) ops.push_back(*op);
  }
  return ops;
}

int verify(const Arguments& a, std::vector<uint8_t> source) {
  std::vector<uint8_t> expected, found;
  if (!read_whole(a.verify, expected))
    return std::fprintf(stderr, "cannot read %s\n", a.verify.c_str()), 2;
  if (!read_whole(a.image, found))
    return std::fprintf(stderr, "cannot read %s\n", a.image.c_str()), 2;
  if (found.size() != expected.size()) {
    std::printf("%s holds %zu bytes, the model %zu\n", a.image.c_str(), found.size(),
                expected.size());
    return 1;
  }
  Model model(std::move(source), std::move(expected),
              a.log.empty() ? std::vector<Operation>{} : read_log(a.log));
  if (std::memcmp(found.data(), model.data(), found.size()) == 0) {
    std::printf("%s equals the model (%zu bytes)\n", a.image.c_str(), found.size());
    return 0;
  }
  std::printf("%s differs from the model: %s", a.image.c_str(),
              model.describe_difference(0, found.data(), found.size(), 8).c_str());
  return 1;
}

}  // namespace
}  // namespace clonefs::exerciser

int main(int argc, char** argv) {
  using namespace clonefs::exerciser;
  Arguments a;
  a.self = argv[0];
  CLI::App app{"Random operations on a file of fixed size, checked against a model (fsx-like)"};
  app.add_option("IMAGE", a.image, "The file to exercise (a mounted clone's image)")->required();
  app.add_option("--source", a.source, "The file's initial content (the clone's source)")
      ->required();
  app.add_option("--seed", a.seed, "Seed of the operations (default: random, printed)");
  app.add_option("--ops", a.ops, "Stop after this many operations (0: no limit)");
  app.add_option("--seconds", a.seconds, "Stop after this many seconds (0: no limit)");
  app.add_option("--max-length", a.max_length, "Longest read, write, discard or copy")
      ->check(CLI::PositiveNumber);
  app.add_flag("--no-mmap", a.no_mmap, "No mmap reads or writes");
  app.add_flag("--direct", a.direct, "Reads and writes through O_DIRECT (4 KiB aligned)");
  app.add_option("--log", a.log, "Write every operation to this file (with --verify: read it)");
  app.add_option("--model-out", a.model_out,
                 "Write what the file must hold to this file at the end");
  app.add_option("--verify", a.verify, "Only compare IMAGE with this model file");
  CLI11_PARSE(app, argc, argv);
  std::vector<uint8_t> source;
  if (!read_whole(a.source, source) || source.empty()) {
    std::fprintf(stderr, "clonefs_exerciser: cannot read %s (or it is empty)\n", a.source.c_str());
    return 2;
  }
  if (!a.verify.empty()) return verify(a, std::move(source));
  if (!app.count("--seed"))
    a.seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  if (a.ops == 0 && a.seconds <= 0) a.seconds = 10;
  std::printf("clonefs_exerciser: seed %llu, %zu bytes\n", static_cast<unsigned long long>(a.seed),
              source.size());
  std::fflush(stdout);
  return run_operations(a, std::move(source));
}
