#include "qga_client.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qtx/base64.h"
#include "qtx/quote.h"

namespace qtx::bench {

QgaClient::QgaClient(int fd) : fd_(fd) {}
QgaClient::~QgaClient() { ::close(fd_); }

bool QgaClient::send(const std::string& line) {
  std::size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool QgaClient::read_line(std::string* line) {
  for (;;) {
    const auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line->assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    char chunk[1 << 16];
    const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

bool QgaClient::sync() {
  const std::uint64_t id = ++sync_id_;
  // The answer is preceded by a 0xFF byte; anything before it is stale.
  if (!send("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":" + std::to_string(id) + "}}\n")) {
    return false;
  }
  std::string line;
  while (read_line(&line)) {
    const auto ff = line.rfind('\xff');
    if (ff != std::string::npos) line.erase(0, ff + 1);
    if (line.find("\"return\": " + std::to_string(id)) != std::string::npos) return true;
  }
  return false;
}

bool QgaClient::call(const std::string& json_command, google::protobuf::Value* ret, std::string* error) {
  if (!send(json_command + "\n")) {
    *error = "write failed";
    return false;
  }
  std::string line;
  if (!read_line(&line)) {
    *error = "connection closed";
    return false;
  }
  google::protobuf::Struct reply;
  if (!google::protobuf::util::JsonStringToMessage(line, &reply).ok()) {
    *error = "not JSON: " + line.substr(0, 200);
    return false;
  }
  auto it = reply.fields().find("return");
  if (it == reply.fields().end()) {
    *error = "error reply: " + line.substr(0, 300);
    return false;
  }
  if (ret != nullptr) *ret = it->second;
  return true;
}

bool QgaClient::pipelined(const std::string& json_command, int n, int window, std::string* error) {
  const std::string line = json_command + "\n";
  int sent = 0, answered = 0;
  std::string reply;
  while (answered < n) {
    while (sent < n && sent - answered < window) {
      if (!send(line)) {
        *error = "write failed";
        return false;
      }
      ++sent;
    }
    if (!read_line(&reply)) {
      *error = "connection closed";
      return false;
    }
    if (reply.find("\"return\"") == std::string::npos) {
      *error = "error reply: " + reply.substr(0, 300);
      return false;
    }
    ++answered;
  }
  return true;
}

bool QgaClient::read_file(const std::string& guest_path, std::size_t chunk, std::string* out, std::string* error) {
  google::protobuf::Value v;
  if (!call("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":" + json_quote(guest_path) + ",\"mode\":\"r\"}}",
            &v, error)) {
    return false;
  }
  const std::string handle = std::to_string(static_cast<long long>(v.number_value()));
  const std::string read = "{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":" + handle +
                           ",\"count\":" + std::to_string(chunk) + "}}";
  std::string piece;
  for (;;) {
    if (!call(read, &v, error)) return false;
    const auto& f = v.struct_value().fields();
    auto b64 = f.find("buf-b64");
    if (b64 == f.end() || !base64_decode(b64->second.string_value(), &piece)) {
      *error = "guest-file-read: no buf-b64";
      return false;
    }
    out->append(piece);
    auto eof = f.find("eof");
    if (piece.empty() || (eof != f.end() && eof->second.bool_value())) break;
  }
  return call("{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":" + handle + "}}", nullptr, error);
}

bool QgaClient::write_file(const std::string& guest_path, const std::string& data, std::size_t chunk,
                           std::string* error) {
  google::protobuf::Value v;
  if (!call("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":" + json_quote(guest_path) + ",\"mode\":\"w\"}}",
            &v, error)) {
    return false;
  }
  const std::string handle = std::to_string(static_cast<long long>(v.number_value()));
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::string b64 = base64_encode(data.substr(off, chunk));
    if (!call("{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":" + handle + ",\"buf-b64\":\"" + b64 +
                  "\"}}",
              nullptr, error)) {
      return false;
    }
  }
  return call("{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":" + handle + "}}", nullptr, error);
}

bool QgaClient::exec(const std::string& path, const std::vector<std::string>& args, int* exit_code, std::string* out,
                     std::string* error) {
  std::string argv = "[";
  for (const auto& a : args) argv += (argv.size() > 1 ? "," : "") + json_quote(a);
  argv += "]";
  google::protobuf::Value v;
  if (!call("{\"execute\":\"guest-exec\",\"arguments\":{\"path\":" + json_quote(path) + ",\"arg\":" + argv +
                ",\"capture-output\":true}}",
            &v, error)) {
    return false;
  }
  const std::string status =
      "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":" +
      std::to_string(static_cast<long long>(v.struct_value().fields().at("pid").number_value())) + "}}";
  // Polled back to back: the best case for qemu-ga (clients usually sleep).
  for (;;) {
    if (!call(status, &v, error)) return false;
    const auto& f = v.struct_value().fields();
    auto exited = f.find("exited");
    if (exited == f.end() || !exited->second.bool_value()) continue;
    auto code = f.find("exitcode");
    *exit_code = code == f.end() ? -1 : static_cast<int>(code->second.number_value());
    auto data = f.find("out-data");
    if (data != f.end() && !base64_decode(data->second.string_value(), out)) {
      *error = "out-data is not base64";
      return false;
    }
    return true;
  }
}

}  // namespace qtx::bench
