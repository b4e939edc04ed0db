#include "envelope_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <stdexcept>

#include "qtx/proto/descriptor_set.h"
#include "qtx/quote.h"

namespace qtx::host::json {

namespace pb = google::protobuf;

struct EnvelopeJson::Impl {
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory{&pool};
  const pb::Descriptor* envelope = nullptr;
  const pb::Message* prototype = nullptr;
};

EnvelopeJson::EnvelopeJson() : impl_(std::make_unique<Impl>()) {
  pb::FileDescriptorSet set;
  auto bytes = qtx::proto::descriptor_set();
  if (!set.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw std::runtime_error("embedded descriptor set does not parse");
  }
  for (const auto& file : set.file()) {
    if (impl_->pool.BuildFile(file) == nullptr) {
      throw std::runtime_error("embedded descriptor set is inconsistent: " + file.name());
    }
  }
  impl_->envelope = impl_->pool.FindMessageTypeByName("qtx.agent.v1.Envelope");
  if (impl_->envelope == nullptr) throw std::runtime_error("schema lacks qtx.agent.v1.Envelope");
  impl_->prototype = impl_->factory.GetPrototype(impl_->envelope);
}

EnvelopeJson::~EnvelopeJson() = default;

namespace {

// "request.ping": the set oneof field of `msg`, then that of the message in it.
std::string type_of(const pb::Message& msg) {
  const auto* refl = msg.GetReflection();
  const auto* body_oneof = msg.GetDescriptor()->FindOneofByName("body");
  const auto* body = body_oneof ? refl->GetOneofFieldDescriptor(msg, body_oneof) : nullptr;
  if (body == nullptr) return "none";
  std::string type = body->name();
  if (body->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) return type;
  const pb::Message& inner = refl->GetMessage(msg, body);
  const auto* kind_oneof = inner.GetDescriptor()->FindOneofByName("kind");
  if (kind_oneof == nullptr) return type;
  const auto* kind = inner.GetReflection()->GetOneofFieldDescriptor(inner, kind_oneof);
  return type + "." + (kind ? kind->name() : std::string("unknown"));
}

}  // namespace

bool EnvelopeJson::to_json_line(std::string_view payload, unsigned long long offset, std::string* out) {
  std::unique_ptr<pb::Message> msg(impl_->prototype->New());
  if (!msg->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return false;
  const auto* check = impl_->envelope->FindFieldByName("check");
  msg->GetReflection()->ClearField(msg.get(), check);
  const auto* id_field = impl_->envelope->FindFieldByName("id");
  const auto id = msg->GetReflection()->GetUInt64(*msg, id_field);

  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string body;
  if (!pb::util::MessageToJsonString(*msg, &body, options).ok()) return false;
  *out = "{\"offset\":" + std::to_string(offset) + ",\"type\":" + json_quote(type_of(*msg)) + ",\"id\":\"" +
         std::to_string(id) + "\",\"message\":" + body + "}";
  return true;
}

bool EnvelopeJson::message_to_json(const pb::MessageLite& message, std::string* out) {
  const pb::Descriptor* type = impl_->pool.FindMessageTypeByName(message.GetTypeName());
  if (type == nullptr) return false;
  std::unique_ptr<pb::Message> msg(impl_->factory.GetPrototype(type)->New());
  if (!msg->ParseFromString(message.SerializeAsString())) return false;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  return pb::util::MessageToJsonString(*msg, out, options).ok();
}

bool EnvelopeJson::json_to_message(std::string_view json, pb::MessageLite* message, std::string* error) {
  const pb::Descriptor* type = impl_->pool.FindMessageTypeByName(message->GetTypeName());
  if (type == nullptr) {
    *error = "not a message of the schema: " + message->GetTypeName();
    return false;
  }
  std::unique_ptr<pb::Message> msg(impl_->factory.GetPrototype(type)->New());
  auto status = pb::util::JsonStringToMessage(std::string(json), msg.get());
  if (!status.ok()) {
    *error = std::string(status.message());
    return false;
  }
  if (!message->ParseFromString(msg->SerializeAsString())) {
    *error = "the message does not convert";
    return false;
  }
  return true;
}

}  // namespace qtx::host::json
