// clonefs create: a new clone of SOURCE into DEST, recorded in META.
#include <cstdlib>

#include "app.h"
#include "control/units.h"
#include "engine/clone.h"
#include "io/posix_devices.h"
#include "io/source_uri.h"

namespace clonefs::cli {
namespace {

struct CreateArgs {
  std::string source, dest, metadata, region_size;
  bool force = false;
  bool share_source = false;
};

// --source, or else CLONEFS_SOURCE_URI: a URI holding a password is then in no process's argv
// (visible in ps to every user while the fingerprint is read).
Result<std::string> source_of(const CreateArgs& args) {
  if (!args.source.empty()) return args.source;
  const char* uri = std::getenv(kSourceUriVariable);
  if (uri != nullptr && *uri != '\0') return std::string(uri);
  return Status::error(EINVAL, std::string("no source: pass --source, or set ") +
                                   kSourceUriVariable + " to the source's URI");
}

int run_create(const CreateArgs& args) {
  auto source = source_of(args);
  if (!source) return usage_error(source.status());
  CreateOptions options{*source,    args.dest,        args.metadata, kDefaultRegionSize,
                        args.force, args.share_source};
  if (!args.region_size.empty()) {
    auto size = parse_byte_size(args.region_size, "region size");
    if (!size) return usage_error(size.status());
    options.region_size = *size;
  }
  Status created = create_clone(options);
  if (!created) return fail(created);
  std::printf("created clone of %s: destination %s, metadata %s, %s regions\n",
              redact_uri(*source).c_str(), args.dest.c_str(), args.metadata.c_str(),
              format_bytes(options.region_size).c_str());
  // A clone is no more readable than its source: say what the clone's files get.
  const mode_t mode = clone_permissions(args.source);
  std::printf(
      "permissions %04o (%s), given to a destination created here and to an IMAGE a "
      "mount creates\n",
      static_cast<unsigned>(mode),
      is_source_uri(args.source) ? "a remote source: owner only" : "the source's");
  return 0;
}

}  // namespace

Command add_create_command(CLI::App& root) {
  auto args = std::make_shared<CreateArgs>();
  CLI::App* app =
      root.add_subcommand("create",
                          "Create a clone: checks SOURCE, creates DEST sparse at the source's size "
                          "(or checks an existing\n"
                          "one is large enough and holds no data or signature, unless --force) and "
                          "writes the metadata.\n"
                          "Nothing is copied yet.");
  app->add_option("--source", args->source,
                  "Read-only source image: a regular file or block device, an http(s) URL "
                  "(https://HOST/golden.img; an S3 object by a presigned URL), or an NBD URI "
                  "(nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, nbds://...); a "
                  "URI is recorded with its secrets redacted. Without it, the URI in "
                  "CLONEFS_SOURCE_URI (keeps a password out of the command line)");
  app->add_option(
         "--dest", args->dest,
         "Destination raw image; created sparse if missing (one holding data needs --force)")
      ->required();
  app->add_option("--metadata", args->metadata, "Metadata file to create (SQLite)")->required();
  app->add_option("--region-size", args->region_size,
                  "Region size: a power of two from 4K to 1G; units K, M, G (default 16K)");
  app->add_flag("--force", args->force,
                "Replace an existing metadata file, and overwrite a destination that already holds "
                "data or a signature (filesystem, partition table, LVM, RAID)");
  app->add_flag("--share-source", args->share_source,
                "http(s) sources: read the golden through the one nbdkit (with a cache on disk) "
                "that every clone of this URL on the host shares, started if none runs, rather "
                "than a server of this command's own (README \"HTTP(S) sources\")");
  return {app, [args] { return run_create(*args); }};
}

}  // namespace clonefs::cli
