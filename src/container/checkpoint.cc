#include "container/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"
#include "common/process.h"
#include "container/rootfs_diff.h"

namespace berth::container {

namespace fs = std::filesystem;

namespace {

std::string FirstErrorLine(const std::string& text) {
  size_t start = 0;
  std::string last;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find("Error") != std::string::npos) return line;
    if (!line.empty()) last = line;
  }
  return last;
}

// berthd's environment without its own LD_PRELOAD, plus `extra` ("K=V").
std::vector<std::string> EnvironmentWith(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("LD_PRELOAD=")) env.emplace_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

class ArchiveWriter {
 public:
  explicit ArchiveWriter(const fs::path& path) : a_(archive_write_new()), path_(path) {}
  ~ArchiveWriter() { archive_write_free(a_); }

  Status Open() {
    if (archive_write_set_format_pax_restricted(a_) != ARCHIVE_OK ||
        archive_write_open_filename(a_, path_.c_str()) != ARCHIVE_OK) {
      return Error("open");
    }
    return OkStatus();
  }
  Status AddBytes(const std::string& name, const std::string& data) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e, ::time(nullptr), 0);
    Status s = WriteEntry(e, data);
    archive_entry_free(e);
    return s;
  }
  // Regular files and directories below `dir`, named `prefix`/<relative>.
  Status AddTree(const fs::path& dir, const std::string& prefix) {
    std::error_code ec;
    RETURN_IF_ERROR(AddDir(prefix));
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = StrCat(prefix, "/", fs::relative(it->path(), dir).string());
      if (it->is_directory(ec)) {
        RETURN_IF_ERROR(AddDir(name));
      } else if (it->is_regular_file(ec)) {
        RETURN_IF_ERROR(AddFile(name, it->path()));
      }
    }
    if (ec) return InternalError(StrCat("list ", dir.string(), ": ", ec.message()));
    return OkStatus();
  }
  // A file streamed in, not read whole (page dumps and the rootfs diff can be
  // large).
  Status AddFile(const std::string& name, const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path.string()));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", path.string()));
    archive_entry* e = archive_entry_new();
    ScopeGuard free_entry([&] { archive_entry_free(e); });
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, st.st_size);
    archive_entry_set_mtime(e, ::time(nullptr), 0);
    if (archive_write_header(a_, e) != ARCHIVE_OK) return Error("write header");
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, StrCat("read ", path.string()));
      if (n == 0) break;
      if (archive_write_data(a_, buf, static_cast<size_t>(n)) != n) return Error("write data");
    }
    return OkStatus();
  }
  Status Close() {
    if (archive_write_close(a_) != ARCHIVE_OK) return Error("close");
    return OkStatus();
  }

 private:
  Status AddDir(const std::string& name) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0700);
    archive_entry_set_mtime(e, ::time(nullptr), 0);
    Status s = WriteEntry(e, "");
    archive_entry_free(e);
    return s;
  }
  Status WriteEntry(archive_entry* e, const std::string& data) {
    if (archive_write_header(a_, e) != ARCHIVE_OK) return Error("write header");
    if (!data.empty() &&
        archive_write_data(a_, data.data(), data.size()) != static_cast<la_ssize_t>(data.size())) {
      return Error("write data");
    }
    return OkStatus();
  }
  Status Error(const char* what) {
    const char* msg = archive_error_string(a_);
    return InternalError(StrCat("checkpoint archive ", path_.string(), ": ", what, ": ",
                                msg ? msg : "unknown error"));
  }
  archive* a_;
  fs::path path_;
};

}  // namespace

StatusOr<CriuSetup> CheckCriu(const std::string& compat_library) {
  RunOptions opts;
  opts.timeout = std::chrono::seconds(30);
  auto r = RunProcess({"criu", "check"}, opts);
  if (!r.ok()) {
    return FailedPreconditionError(StrCat("checkpoints need CRIU, which is not usable here (",
                                          r.status().message(), "); install the criu package"));
  }
  if (r->exit_code == 0) return CriuSetup{};
  const std::string error = FirstErrorLine(r->err.empty() ? r->out : r->err);
  // CRIU 3.17 on Linux 6.13+: "vdso: Unexpected rt vDSO area bounds". The
  // shim presents the kernel's [vvar_vclock] area as part of [vvar].
  std::string compat_error;
  if (error.find("vdso") != std::string::npos && !compat_library.empty()) {
    CriuSetup setup;
    setup.env = {StrCat("LD_PRELOAD=", compat_library)};
    opts.env = EnvironmentWith(setup.env);
    auto with_shim = RunProcess({"criu", "check"}, opts);
    if (with_shim.ok() && with_shim->exit_code == 0) return setup;
    compat_error =
        with_shim.ok()
            ? StrCat(" (with ", compat_library, " preloaded: ",
                     FirstErrorLine(with_shim->err.empty() ? with_shim->out : with_shim->err), ")")
            : StrCat(" (with ", compat_library, " preloaded: ", with_shim.status().message(), ")");
  }
  return FailedPreconditionError(
      StrCat("checkpoints need CRIU, and `criu check` fails on this host: ", error, compat_error));
}

Status WriteCheckpoint(const CheckpointRequest& req) {
  const fs::path location = req.location;
  if (!location.is_absolute() || location.filename().empty()) {
    return InvalidArgumentError(
        StrCat("checkpoint location \"", req.location, "\" must be an absolute file path"));
  }
  std::error_code ec;
  if (!fs::is_directory(location.parent_path(), ec)) {
    return InvalidArgumentError(StrCat("checkpoint location ", req.location, ": directory ",
                                       location.parent_path().string(), " does not exist"));
  }
  ASSIGN_OR_RETURN(CriuSetup criu, CheckCriu(req.criu_compat_library));
  (void)RemoveAll(req.work_dir);
  const fs::path images = req.work_dir / "checkpoint";
  const fs::path work = req.work_dir / "work";
  RETURN_IF_ERROR(MakeDirs(images, 0700));
  RETURN_IF_ERROR(MakeDirs(work, 0700));
  ScopeGuard remove_work([&] { (void)RemoveAll(req.work_dir); });

  std::vector<std::string> argv = {req.runtime_binary};
  argv.insert(argv.end(), req.runtime_args.begin(), req.runtime_args.end());
  argv.insert(argv.end(), {"checkpoint", "--leave-running", "--image-path", images.string(),
                           "--work-path", work.string(), req.container_id});
  RunOptions opts;
  opts.timeout = std::chrono::minutes(5);
  if (!criu.env.empty()) {
    // The runtime passes its environment on to the criu it starts (runc's
    // `criu swrk`, crun's libcriu); the shim only touches reads of
    // /proc/<pid>/[s]maps, so the runtime itself is unaffected.
    opts.env = EnvironmentWith(criu.env);
  }
  ASSIGN_OR_RETURN(ProcessResult r, RunProcess(argv, opts));
  if (r.exit_code != 0) {
    auto log = ReadFile(work / "dump.log");
    return FailedPreconditionError(
        StrCat("checkpoint of container ", req.container_id,
               " failed: ", FirstErrorLine(r.err.empty() ? r.out : r.err),
               log.ok() ? StrCat("; CRIU: ", FirstErrorLine(*log)) : std::string()));
  }

  const fs::path tmp = location.parent_path() / StrCat(".", location.filename().string(), ".tmp");
  ScopeGuard remove_tmp([&] { ::unlink(tmp.c_str()); });
  {
    ArchiveWriter w(tmp);
    RETURN_IF_ERROR(w.Open());
    RETURN_IF_ERROR(w.AddTree(images, "checkpoint"));
    ASSIGN_OR_RETURN(std::string spec, ReadFile(fs::path(req.bundle) / "config.json"));
    RETURN_IF_ERROR(w.AddBytes("spec.dump", spec));
    RETURN_IF_ERROR(w.AddBytes("config.dump", req.record_json));
    // The writable layer, as CRI-O and containerd archive it.
    const fs::path diff_tar = req.work_dir / "rootfs-diff.tar";
    ASSIGN_OR_RETURN(RootfsDiff diff, WriteRootfsDiff(req.rootfs_upper, diff_tar));
    RETURN_IF_ERROR(w.AddFile("rootfs-diff.tar", diff_tar));
    if (!diff.deleted.empty()) {
      RETURN_IF_ERROR(w.AddBytes("deleted.files", DeletedFilesJson(diff.deleted)));
    }
    if (auto log = ReadFile(work / "dump.log"); log.ok()) {
      RETURN_IF_ERROR(w.AddBytes("dump.log", *log));
    }
    RETURN_IF_ERROR(w.Close());
  }
  if (::rename(tmp.c_str(), location.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename checkpoint archive to ", req.location));
  }
  remove_tmp.Cancel();
  return OkStatus();
}

}  // namespace berth::container
