#include "decode_command.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "envelope_json.h"
#include "qtx/wire/decoder.h"

namespace qtx::cli {

using host::json::EnvelopeJson;
namespace {

class PrintingHandler : public wire::FrameDecoder::Handler {
 public:
  explicit PrintingHandler(std::FILE* out) : out_(out) {}

  bool on_frame(std::string_view payload, std::uint64_t offset) override {
    if (!json_.to_json_line(payload, offset, &line_)) return false;
    std::fprintf(out_, "%s\n", line_.c_str());
    return true;
  }

  void on_drop(const wire::Drop& d) override {
    std::fprintf(out_, "{\"dropped\":%llu,\"reason\":\"%s\",\"offset\":%llu}\n",
                 static_cast<unsigned long long>(d.bytes), wire::drop_reason_name(d.reason),
                 static_cast<unsigned long long>(d.offset));
  }

 private:
  std::FILE* out_;
  EnvelopeJson json_;
  std::string line_;
};

}  // namespace

int run_decode(const DecodeOptions& options, std::FILE* out, std::FILE* err) {
  int fd = STDIN_FILENO;
  const bool is_stdin = options.input == "-";
  if (!is_stdin) {
    fd = ::open(options.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(err, "qtx decode: cannot open %s: %s\n", options.input.c_str(), std::strerror(errno));
      return 1;
    }
  }
  PrintingHandler handler(out);
  wire::FrameDecoder::Options decoder_options;
  if (options.max_payload != 0) decoder_options.max_payload = options.max_payload;
  wire::FrameDecoder decoder(&handler, decoder_options);

  char buf[64 * 1024];
  int rc = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      decoder.feed(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      std::fprintf(err, "qtx decode: reading %s: %s\n", is_stdin ? "standard input" : options.input.c_str(),
                   std::strerror(errno));
      rc = 1;
      break;
    }
  }
  decoder.stall_flush();  // end of input counts as a stall
  if (!is_stdin) ::close(fd);

  if (options.stats) {
    const auto& s = decoder.stats();
    std::fprintf(out, "{\"stats\":{\"bytes\":%llu,\"frames\":%llu,\"frame_bytes\":%llu,\"dropped\":{",
                 static_cast<unsigned long long>(s.bytes_fed), static_cast<unsigned long long>(s.frames),
                 static_cast<unsigned long long>(s.frame_bytes));
    for (std::size_t r = 0; r < wire::kDropReasonCount; ++r) {
      std::fprintf(out, "%s\"%s\":%llu", r ? "," : "", wire::drop_reason_name(static_cast<wire::DropReason>(r)),
                   static_cast<unsigned long long>(s.dropped[r]));
    }
    std::fprintf(out, "}}}\n");
  }
  std::fflush(out);
  return rc;
}

void add_decode_command(CLI::App& app, std::function<int()>* run) {
  auto o = std::make_shared<DecodeOptions>();
  auto* dec =
      app.add_subcommand("decode",
                         "Decode a captured byte stream of the channel: one JSON line per message and one per run of "
                         "dropped bytes ({\"dropped\":N,\"reason\":R,\"offset\":O}). End of input counts as a stall. "
                         "Exit 0 when the input was readable.");
  dec->add_option("input", o->input, "Capture file, or - for standard input")->required();
  dec->add_option("--max-payload", o->max_payload, "Largest payload accepted (bytes; default 16 MiB)")
      ->check(CLI::Range(1u, 16u * 1024 * 1024));
  dec->add_flag("--stats", o->stats, "Finish with a {\"stats\":{...}} line");
  dec->callback([o, run] { *run = [o] { return run_decode(*o, stdout, stderr); }; });
}

}  // namespace qtx::cli
