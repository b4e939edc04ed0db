// A hostile guest against libqtx-host's decoder: nested claims, the stream
// that made resynchronisation quadratic. On one Manager (one I/O thread) a
// 2 MiB burst once held a healthy VM's ping with a 2 s deadline for 63 s.
#include <thread>

#include "qtx/wire/decoder.h"
#include "qtx/wire/envelope_codec.h"
#include "support/frames.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;

class HostResync : public HostFixture {};

TEST_F(HostResync, NestedClaimsFromOneGuestDoNotDelayAnotherAgentOnTheSameManager) {
  start_agent();
  auto healthy = connect();
  ASSERT_TRUE(healthy);

  // The hostile guest: ready, then the attack, then one telemetry event that
  // no claim covers, which tells the test the library has read everything.
  HostListener listener(dir() + "/hostile.sock");
  Mailbox<std::uint64_t> samples;
  auto o = options();
  o.endpoint = host::Endpoint::connect(listener.path());
  o.keepalive_interval = 0ms;
  o.callbacks.on_telemetry = [&samples](const v1::TelemetrySample& s) { samples.post(s.seq()); };
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto hostile = added.value();
  const int fd = listener.accept(10000ms);
  ASSERT_GE(fd, 0);
  AgentConnection peer(fd);
  answer_hello(peer);
  ASSERT_TRUE(hostile->wait_ready(10s).ok());

  constexpr std::size_t kNested = 4u << 20;
  v1::Envelope sample;
  sample.mutable_event()->mutable_telemetry()->set_seq(42);
  std::string after;
  ASSERT_TRUE(wire::append_envelope_frame(sample, &after).ok());
  const std::string attack = nested_claims(kNested);
  std::thread writer([&] { peer.send_raw(attack + after); });

  // Meanwhile the healthy agent's calls keep their deadlines.
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    v1::PingRequest p;
    p.set_payload("healthy " + std::to_string(i));
    auto r = healthy->ping(p, {.timeout = 2000ms});
    if (!r.ok()) {
      ADD_FAILURE() << "ping " << i << ": " << r.error().to_string();
      break;
    }
    EXPECT_EQ(r.value().payload(), p.payload());
    ++answered;
  }
  writer.join();
  ASSERT_EQ(samples.take(60000ms), std::optional<std::uint64_t>(42)) << "the event behind the attack";
  EXPECT_EQ(answered, 20);
  // The library notes its decoder's work after each read: one more event,
  // sent now, is read after that note for the read that carried event 42.
  sample.mutable_event()->mutable_telemetry()->set_seq(43);
  after.clear();
  ASSERT_TRUE(wire::append_envelope_frame(sample, &after).ok());
  peer.send_raw(after);
  ASSERT_EQ(samples.take(10000ms), std::optional<std::uint64_t>(43));

  const auto st = hostile->stats();
  EXPECT_EQ(st.dropped_bytes, kNested / 9 * 9);
  EXPECT_GT(st.decoder_bytes_hashed, kNested) << "the seal checks were not counted";
  EXPECT_LE(st.decoder_bytes_hashed, wire::kMaxHashedPerByteFed * st.bytes_in + wire::kSealCheckpointSpacing)
      << "bytes in " << st.bytes_in;
  std::printf("[ figure ] %zu MiB of nested claims: host hashed %.2f bytes per byte received\n", kNested >> 20,
              static_cast<double>(st.decoder_bytes_hashed) / st.bytes_in);
}

}  // namespace
}  // namespace qtx::testing
