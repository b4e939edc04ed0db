// A hostile host against the agent's decoder: nested claims, the stream that
// made resynchronisation quadratic (a 2 MiB burst once delayed the agent's
// answers by 66 s). The agent's own counters bound its work.
#include <thread>

#include "hostile/peak_rss.h"
#include "qtx/wire/decoder.h"
#include "qtx/wire/envelope_codec.h"
#include "support/agent_fixture.h"
#include "support/frames.h"

namespace qtx::testing {
namespace {

class AgentResync : public AgentFixture {};

TEST_F(AgentResync, NestedClaimsCostLinearWorkAndTheRequestTheyCoverIsAnswered) {
  start();
  // A ping the claims all cover: it is found once the last claim is refused.
  v1::Envelope ping;
  ping.set_id(7);
  ping.mutable_request()->mutable_ping()->set_payload("behind the claims");
  std::string tail;
  ASSERT_TRUE(wire::append_envelope_frame(ping, &tail).ok());
  constexpr std::size_t kNested = 8u << 20;
  const std::string stream = nested_claims(kNested, tail);

  std::thread writer([&] { conn_->send_raw(stream); });
  auto answer = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 7; }, Millis(60000));
  writer.join();
  ASSERT_TRUE(answer && answer->has_response() && answer->response().has_ping()) << agent_->log();
  EXPECT_EQ(answer->response().ping().payload(), "behind the claims");

  v1::Request info;
  info.mutable_info();
  auto r = conn_->call(8, info);
  ASSERT_TRUE(r && r->has_info());
  const auto& counters = r->info().session();
  EXPECT_EQ(counters.bytes_dropped(), kNested / 9 * 9);
  EXPECT_GT(counters.bytes_hashed(), kNested) << "the seal checks were not counted";
  EXPECT_LE(counters.bytes_hashed(),
            wire::kMaxHashedPerByteFed * counters.bytes_received() + wire::kSealCheckpointSpacing)
      << "received " << counters.bytes_received();
  std::printf("[ figure ] %zu MiB of nested claims: agent hashed %.2f bytes per byte received\n", kNested >> 20,
              static_cast<double>(counters.bytes_hashed()) / counters.bytes_received());
  if (kRssIsMeaningful) {
    // One partial frame (the 8 MiB claim) and its checkpoints, not a copy per claim.
    const long peak = peak_rss_kib(agent_->pid());
    std::printf("[ figure ] agent VmHWM %ld KiB\n", peak);
    EXPECT_LT(peak, 48 * 1024);
  }
}

}  // namespace
}  // namespace qtx::testing
