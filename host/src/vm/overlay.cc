// Overlay disks on cloud images (qemu-img).
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "qtx/host/vm.h"
#include "vm/run_tool.h"

namespace qtx::host::vm {
namespace {

// What qemu-img info says of an image.
struct ImageInfo {
  std::string format;
  std::uint64_t virtual_size = 0;
  std::string full_backing;    // the backing file as qemu resolves it; empty: none
  std::string backing_format;  // as recorded in the image; empty: none recorded
};

std::string field(const google::protobuf::Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? std::string() : it->second.string_value();
}

Result<ImageInfo> image_info(const std::string& qemu_img, const std::string& path) {
  auto run = run_tool({qemu_img, "info", "--output=json", path}, "qemu-utils");
  if (!run) return run.error();
  if (run->exit_code != 0) {
    return Error(ErrorKind::kLocal, "qemu-img info " + path + " failed: " + run->err);
  }
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(run->out, &doc).ok()) {
    return Error(ErrorKind::kLocal, "qemu-img info " + path + " printed what is not JSON: " + run->out.substr(0, 200));
  }
  ImageInfo info;
  info.format = field(doc, "format");
  auto size = doc.fields().find("virtual-size");
  if (info.format.empty() || size == doc.fields().end() || size->second.number_value() < 0) {
    return Error(ErrorKind::kLocal, "qemu-img info " + path + " gave no format or virtual size");
  }
  info.virtual_size = static_cast<std::uint64_t>(size->second.number_value());
  info.full_backing = field(doc, "full-backing-filename");
  info.backing_format = field(doc, "backing-filename-format");
  return info;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
  const std::string s(text);
  const auto bad = [&s] {
    return Error(ErrorKind::kInvalidArgument,
                 "bad size \"" + s + "\": give bytes or a number with K, M, G or T (binary units), e.g. 20G");
  };
  // DIGITS[.DIGITS]UNIT: strtod alone would also take hex, exponents and "inf".
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || i > 19) return bad();
  if (i < s.size() && s[i] == '.') {
    const std::size_t frac = ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == frac) return bad();
  }
  const double number = std::strtod(s.substr(0, i).c_str(), nullptr);
  std::string unit = s.substr(i);
  for (const char* suffix : {"iB", "B"}) {
    const std::size_t n = std::strlen(suffix);
    if (unit.size() > n && unit.compare(unit.size() - n, n, suffix) == 0) {
      unit.resize(unit.size() - n);
      break;
    }
  }
  double scale = 1;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit.size() == 1) {
    switch (unit[0]) {
      case 'k':
      case 'K': scale = 1024.0; break;
      case 'm':
      case 'M': scale = 1024.0 * 1024; break;
      case 'g':
      case 'G': scale = 1024.0 * 1024 * 1024; break;
      case 't':
      case 'T': scale = 1024.0 * 1024 * 1024 * 1024; break;
      default: return bad();
    }
  } else {
    return bad();
  }
  const double bytes = number * scale;
  if (bytes != std::floor(bytes)) return bad();  // "1.3K": not a whole number of bytes
  if (bytes > 9.0e18) return bad();
  return static_cast<std::uint64_t>(bytes);
}

Result<OverlayResult> create_overlay(const OverlayOptions& o) {
  if (o.backing.empty()) return Error(ErrorKind::kInvalidArgument, "no backing image given");
  if (o.output.empty()) return Error(ErrorKind::kInvalidArgument, "no overlay path given");
  // The backing file by absolute path: qemu resolves a relative one against
  // the overlay's directory, not ours.
  char resolved[PATH_MAX];
  if (::realpath(o.backing.c_str(), resolved) == nullptr || ::access(resolved, R_OK) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR) {
      return Error(ErrorKind::kNotFound,
                   "backing image " + o.backing +
                       " does not exist: download a cloud image there first (e.g. Debian's "
                       "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2)",
                   0, e);
    }
    return Error(ErrorKind::kLocal, "cannot read backing image " + o.backing + ": " + std::strerror(e), 0, e);
  }
  const std::string backing = resolved;
  struct stat st {};
  if (::stat(backing.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) {
    return Error(ErrorKind::kInvalidArgument, "backing image " + o.backing + " is a directory, not a disk image");
  }
  if (backing == o.output) return Error(ErrorKind::kInvalidArgument, "the overlay cannot be its own backing file");

  auto info = image_info(o.qemu_img, backing);
  if (!info) return info.error();
  if (o.size != 0 && o.size < info->virtual_size) {
    return Error(ErrorKind::kInvalidArgument,
                 "overlay size " + std::to_string(o.size) +
                     " bytes is smaller than the backing image's virtual size (" + std::to_string(info->virtual_size) +
                     " bytes): a guest would find its filesystem cut short. Give a larger size, or 0 to inherit it");
  }

  OverlayResult result;
  result.backing_format = info->format;
  result.backing_size = info->virtual_size;
  result.size = o.size == 0 ? info->virtual_size : o.size;
  std::vector<std::string> argv = {o.qemu_img, "create", "-q", "-f",         "qcow2",
                                   "-b",       backing,  "-F", info->format, o.output};
  if (o.size != 0) argv.push_back(std::to_string(o.size));
  result.command = shell_join(argv);

  if (::access(o.output.c_str(), F_OK) == 0) {
    auto existing = image_info(o.qemu_img, o.output);
    const bool same = existing && existing->format == "qcow2" && existing->full_backing == backing &&
                      existing->backing_format == info->format && existing->virtual_size == result.size;
    if (same) return result;  // created = false: already what was asked for
    if (!o.overwrite) {
      return Error(ErrorKind::kAlreadyExists,
                   o.output + " already exists and is not this overlay (" +
                       (existing
                            ? "backed by " + (existing->full_backing.empty() ? "nothing" : existing->full_backing) +
                                  ", " + std::to_string(existing->virtual_size) + " bytes"
                            : "unreadable: " + existing.error().message()) +
                       "): remove it, or ask to overwrite it");
    }
  }

  auto run = run_tool(argv, "qemu-utils");
  if (!run) return run.error();
  if (run->exit_code != 0) {
    return Error(ErrorKind::kLocal, "'" + result.command + "' failed (exit " + std::to_string(run->exit_code) +
                                        "): " + run->err + run->out);
  }
  result.created = true;
  return result;
}

}  // namespace qtx::host::vm
