// Messages of the schema as JSON, for the qtx tool and the C API. Uses the full protobuf runtime
// over the schema's embedded descriptor set, so the generated (lite) classes
// need no reflection.
//
// Compiled into libqtx-host only, and exported from it for the qtx tool, so
// the codec and the schema's descriptors are linked once. Not installed: not
// part of the library's API.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "qtx/host/export.h"

namespace google::protobuf {
class MessageLite;
}

namespace qtx::host::json {

class QTX_HOST_API EnvelopeJson {
 public:
  EnvelopeJson();
  ~EnvelopeJson();
  EnvelopeJson(const EnvelopeJson&) = delete;
  EnvelopeJson& operator=(const EnvelopeJson&) = delete;

  // One line of JSON for a sealed Envelope payload:
  //   {"offset":O,"type":"request.ping","id":"7","message":{...}}
  // where "type" names the body and its kind, and "message" is the envelope
  // in proto3 JSON (field names as in the .proto; the seal is left out).
  // False when the payload does not parse; *out is then unchanged.
  bool to_json_line(std::string_view payload, unsigned long long offset, std::string* out);

  // Any message of the schema (lite classes included) in proto3 JSON, on one
  // line: "{}" for an empty message; false for a type outside the schema.
  bool message_to_json(const google::protobuf::MessageLite& message, std::string* out);
  // The reverse: parses proto3 JSON into `message` (a type of the schema).
  // False with a reason in *error on bad JSON or unknown fields.
  bool json_to_message(std::string_view json, google::protobuf::MessageLite* message, std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qtx::host::json
