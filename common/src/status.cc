#include "qtx/status.h"

#include "qtx/error_table.h"

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
  const ErrorCodeRow* row = error_code_row(code);
  return row ? row->name : "unknown";
}

}  // namespace qtx
