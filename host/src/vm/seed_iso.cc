// Writing a seed as a NoCloud ISO with xorriso.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "qtx/host/vm.h"
#include "vm/run_tool.h"

namespace qtx::host::vm {
namespace {

// Every date in the image: fixed, so the same seed gives the same bytes.
constexpr const char* kFixedDate = "2000010100000000";  // xorriso's YYYYMMDDhhmmsscc, UTC

bool write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f.flush());
}

bool read_file(const std::string& path, std::string* data) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  *data = s.str();
  return static_cast<bool>(f) || f.eof();
}

// A directory removed with what it holds when the object goes.
class StageDir {
 public:
  StageDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/qtx-seed-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~StageDir() {
    for (const auto& f : files_) ::unlink(f.c_str());
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  StageDir(const StageDir&) = delete;
  StageDir& operator=(const StageDir&) = delete;
  const std::string& path() const { return path_; }
  bool add(const std::string& name, const std::string& data) {
    files_.push_back(path_ + "/" + name);
    return write_file(files_.back(), data);
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

}  // namespace

Result<SeedIsoResult> write_seed_iso(const SeedOptions& seed, const SeedIsoOptions& o) {
  if (o.output.empty()) return Error(ErrorKind::kInvalidArgument, "no output path given for the seed ISO");
  auto files = render_seed(seed);
  if (!files) return files.error();
  SeedIsoResult result;
  result.files = std::move(files.value());

  const auto slash = o.output.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : o.output.substr(0, slash));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(ErrorKind::kNotFound, "the directory of " + o.output + " does not exist");
  }

  StageDir stage;
  if (stage.path().empty())
    return Error(ErrorKind::kLocal, "cannot make a staging directory: " + std::string(std::strerror(errno)), 0, errno);
  bool staged = stage.add("meta-data", result.files.meta_data) && stage.add("user-data", result.files.user_data);
  if (!result.files.network_config.empty()) staged = staged && stage.add("network-config", result.files.network_config);
  if (!staged) return Error(ErrorKind::kLocal, "cannot write the seed's files in " + stage.path());

  // Written beside the output and renamed over it: a reader never sees a
  // half-written ISO, and a failure leaves the old one.
  const std::string tmp = o.output + ".tmp-" + std::to_string(::getpid());
  std::vector<std::string> argv = {o.xorriso,
                                   "-as",
                                   "mkisofs",
                                   "-quiet",
                                   "-o",
                                   tmp,
                                   "-V",
                                   "cidata",
                                   "-J",
                                   "-r",
                                   "--set_all_file_dates",
                                   kFixedDate,
                                   "--modification-date=" + std::string(kFixedDate),
                                   stage.path()};
  auto run = run_tool(argv, "xorriso");
  if (!run) return run.error();
  if (run->exit_code != 0) {
    ::unlink(tmp.c_str());
    return Error(ErrorKind::kLocal, "xorriso failed (exit " + std::to_string(run->exit_code) + "): " + run->err);
  }
  std::string fresh, existing;
  if (!read_file(tmp, &fresh)) {
    ::unlink(tmp.c_str());
    return Error(ErrorKind::kLocal, "xorriso wrote no image at " + tmp);
  }
  if (::access(o.output.c_str(), F_OK) == 0) {
    if (read_file(o.output, &existing) && existing == fresh) {
      ::unlink(tmp.c_str());
      return result;  // created = false: the same seed was already there
    }
    if (!o.overwrite) {
      ::unlink(tmp.c_str());
      return Error(ErrorKind::kAlreadyExists,
                   o.output + " already exists with a different seed: remove it, or ask to overwrite it");
    }
  }
  if (::rename(tmp.c_str(), o.output.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return Error(ErrorKind::kLocal, "cannot rename " + tmp + " to " + o.output + ": " + std::strerror(e), 0, e);
  }
  result.created = true;
  return result;
}

}  // namespace qtx::host::vm
