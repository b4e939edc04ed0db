// The C API's metrics: the exposition of a C manager's agent, and its
// built-in endpoint.
#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "qtx/host.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

class CApiMetrics : public HostFixture {};

TEST_F(CApiMetrics, RendersAndServes) {
  start_agent();
  qtx_manager* m = qtx_manager_new();
  ASSERT_NE(m, nullptr);
  const std::string path = socket_path();
  qtx_agent_options o;
  qtx_agent_options_init(&o);
  o.socket_path = path.c_str();
  qtx_error err;
  qtx_agent* a = qtx_agent_add(m, &o, &err);
  ASSERT_NE(a, nullptr) << err.message;
  ASSERT_EQ(qtx_agent_wait_ready(a, 10000, &err), QTX_OK) << err.message;

  char* text = nullptr;
  ASSERT_EQ(qtx_manager_render_metrics(m, QTX_METRICS_PROMETHEUS_TEXT, &text, &err), QTX_OK) << err.message;
  ASSERT_NE(text, nullptr);
  // A C agent is named by its socket path.
  EXPECT_NE(std::string(text).find("qtx_agent_up{agent=\"" + path + "\"} 1\n"), std::string::npos) << text;
  qtx_free(text);
  char* om = nullptr;
  ASSERT_EQ(qtx_manager_render_metrics(m, QTX_METRICS_OPENMETRICS, &om, &err), QTX_OK);
  const std::string om_text(om);
  qtx_free(om);
  EXPECT_EQ(om_text.substr(om_text.size() - 6), "# EOF\n");
  EXPECT_EQ(qtx_manager_render_metrics(m, 7, &om, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(qtx_metrics_content_type(QTX_METRICS_OPENMETRICS),
               "application/openmetrics-text; version=1.0.0; charset=utf-8");

  int port = 0;
  qtx_metrics_server* server = qtx_metrics_server_start(m, "127.0.0.1:0", &port, &err);
  ASSERT_NE(server, nullptr) << err.message;
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("qtx_agent_up{agent=\"" + path + "\"} 1\n"), std::string::npos);
  EXPECT_EQ(qtx_metrics_server_start(m, "no-port", nullptr, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_LOCAL);
  qtx_metrics_server_free(server);
  qtx_agent_free(a);
  qtx_manager_free(m);
}

}  // namespace
}  // namespace qtx::testing
