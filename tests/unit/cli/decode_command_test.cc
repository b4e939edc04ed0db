#include "decode_command.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

#include "qtx/wire/encoder.h"
#include "qtx/wire/envelope_codec.h"
#include "qtx/wire/seal.h"

namespace qtx::cli {
namespace {

namespace v1 = agent::v1;

std::string frame_of(const v1::Envelope& env) {
  std::string f;
  EXPECT_TRUE(wire::append_envelope_frame(env, &f).ok());
  return f;
}

class DecodeCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qtx-decode-test.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::remove(path_.c_str()); }

  void write_capture(const std::string& bytes) { std::ofstream(path_, std::ios::binary) << bytes; }

  // Runs the command; returns its exit code, output in out_/err_.
  int run(DecodeOptions options) {
    char* out_buf = nullptr;
    char* err_buf = nullptr;
    std::size_t out_len = 0, err_len = 0;
    std::FILE* out = open_memstream(&out_buf, &out_len);
    std::FILE* err = open_memstream(&err_buf, &err_len);
    int rc = run_decode(options, out, err);
    std::fclose(out);
    std::fclose(err);
    out_.assign(out_buf, out_len);
    err_.assign(err_buf, err_len);
    std::free(out_buf);
    std::free(err_buf);
    return rc;
  }

  std::string path_;
  std::string out_;
  std::string err_;
};

// garbage, a frame, a stale partial frame overtaken by the next one, two
// frames, and a frame cut off by the end of the capture.
std::string noisy_capture() {
  v1::Envelope ping;
  ping.set_id(1);
  ping.mutable_request()->mutable_ping()->set_payload("hi");
  v1::Envelope telemetry;
  telemetry.mutable_event()->mutable_telemetry()->set_seq(9);
  telemetry.mutable_event()->mutable_telemetry()->mutable_memory()->set_total_bytes(268435456);
  v1::Envelope denied;
  denied.set_id(1);
  denied.mutable_response()->mutable_error()->set_code(v1::ERROR_CODE_DENIED);
  denied.mutable_response()->mutable_error()->set_message("exec \"denied\"");
  const std::string t = frame_of(telemetry);
  return "noise" + frame_of(ping) + t.substr(0, 10) + frame_of(denied) + t + t.substr(0, 12);
}

// The committed capture (the demo decodes it) is byte for byte what this
// encoder produces: the wire format has not drifted.
TEST(GoldenCapture, EncoderReproducesTheCommittedBytes) {
  std::ifstream f(QTX_TEST_DATA_DIR "/noisy-channel.bin", std::ios::binary);
  ASSERT_TRUE(f.good()) << "missing " QTX_TEST_DATA_DIR "/noisy-channel.bin";
  std::string golden((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(golden, noisy_capture());
}

TEST_F(DecodeCommand, PrintsMessagesAndDropsInStreamOrder) {
  write_capture(noisy_capture());
  ASSERT_EQ(run({.input = path_, .stats = true}), 0);
  EXPECT_EQ(err_, "");
  EXPECT_EQ(out_,
            "{\"dropped\":5,\"reason\":\"garbage\",\"offset\":0}\n"
            "{\"offset\":5,\"type\":\"request.ping\",\"id\":\"1\",\"message\":{\"id\":\"1\",\"request\":{\"ping\":{"
            "\"payload\":\"aGk=\"}}}}\n"
            "{\"dropped\":10,\"reason\":\"bad_payload\",\"offset\":28}\n"
            "{\"offset\":38,\"type\":\"response.error\",\"id\":\"1\",\"message\":{\"id\":\"1\",\"response\":{\"error\":"
            "{\"code\":\"ERROR_CODE_DENIED\",\"message\":\"exec \\\"denied\\\"\"}}}}\n"
            "{\"offset\":74,\"type\":\"event.telemetry\",\"id\":\"0\",\"message\":{\"event\":{\"telemetry\":{\"seq\":"
            "\"9\",\"memory\":{\"total_bytes\":\"268435456\"}}}}}\n"
            "{\"dropped\":12,\"reason\":\"stalled\",\"offset\":101}\n"
            "{\"stats\":{\"bytes\":113,\"frames\":3,\"frame_bytes\":86,\"dropped\":{\"garbage\":5,\"bad_length\":0,"
            "\"bad_payload\":10,\"stalled\":12,\"reset\":0}}}\n");
}

TEST_F(DecodeCommand, UnknownRequestKindIsPrintedAsUnknown) {
  // A request from a newer schema: field 999 inside Request, which this
  // schema does not know.
  // id = 3 (10 03), then Request (field 3: 1a 03) holding field 999 = 1 (b8 3e 01).
  const std::string body("\x10\x03\x1a\x03\xb8\x3e\x01", 7);
  std::string payload;
  wire::append_sealed(body, &payload);
  std::string f;
  ASSERT_TRUE(wire::append_frame(payload, &f).ok());
  write_capture(f);
  ASSERT_EQ(run({.input = path_}), 0);
  EXPECT_EQ(out_,
            "{\"offset\":0,\"type\":\"request.unknown\",\"id\":\"3\",\"message\":{\"id\":\"3\",\"request\":{}}}\n");
}

TEST_F(DecodeCommand, EmptyInputPrintsNothing) {
  write_capture("");
  EXPECT_EQ(run({.input = path_}), 0);
  EXPECT_EQ(out_, "");
}

TEST_F(DecodeCommand, UnreadableInputIsOneClearLine) {
  EXPECT_EQ(run({.input = "/nonexistent/capture.bin"}), 1);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(err_, "qtx decode: cannot open /nonexistent/capture.bin: No such file or directory\n");
}

TEST_F(DecodeCommand, LowerPayloadLimitTurnsBigFramesIntoBadLength) {
  v1::Envelope ping;
  ping.set_id(1);
  ping.mutable_request()->mutable_ping()->set_payload(std::string(100, 'x'));
  const std::string f = frame_of(ping);
  write_capture(f);
  ASSERT_EQ(run({.input = path_, .max_payload = 64}), 0);
  // The header is refused; the payload it claimed belongs to no frame.
  EXPECT_EQ(out_,
            "{\"dropped\":8,\"reason\":\"bad_length\",\"offset\":0}\n"
            "{\"dropped\":" +
                std::to_string(f.size() - 8) + ",\"reason\":\"garbage\",\"offset\":8}\n");
}

}  // namespace
}  // namespace qtx::cli
