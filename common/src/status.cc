#include "qtx/status.h"

namespace qtx {

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string out = code_name(code());
  for (char& c : out) {
    if (c == '_') c = ' ';
  }
  out += ": ";
  out += rep_->message;
  return out;
}

const char* code_name(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kInvalidArgument: return "invalid_argument";
    case Status::Code::kNotFound: return "not_found";
    case Status::Code::kAlreadyExists: return "already_exists";
    case Status::Code::kDenied: return "denied";
    case Status::Code::kUnsupported: return "unsupported";
    case Status::Code::kBusy: return "busy";
    case Status::Code::kTimeout: return "timeout";
    case Status::Code::kDisconnected: return "disconnected";
    case Status::Code::kCancelled: return "cancelled";
    case Status::Code::kIoError: return "io_error";
    case Status::Code::kProtocol: return "protocol";
    case Status::Code::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace qtx
