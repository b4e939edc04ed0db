// The error vocabulary: qtx/error_table.h (Status::Code and wire codes) and
// host/src/error_table.h (ErrorKind, the C codes). The headers' static_asserts
// check the tables' shape at compile time; these cases check what a caller
// sees through the public names and conversions.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "error_table.h"  // host/src
#include "qtx/error_table.h"
#include "qtx/host.h"
#include "qtx/host/error.h"
#include "qtx/status.h"

namespace qtx::host::detail {
namespace {

namespace v1 = ::qtx::agent::v1;

TEST(ErrorTable, EveryWireCodeMapsToExactlyOneKindAndOneStatusCode) {
  std::set<ErrorKind> kinds_seen;
  for (int w = v1::ErrorCode_MIN; w <= v1::ErrorCode_MAX; ++w) {
    ASSERT_TRUE(v1::ErrorCode_IsValid(w)) << w;
    const ErrorKind kind = kind_from_wire(w);
    ASSERT_NE(kind_row(kind), nullptr) << "wire code " << w;
    const Status::Code code = code_from_wire(w);
    ASSERT_NE(error_code_row(code), nullptr) << "wire code " << w;
    if (w == v1::ERROR_CODE_UNSPECIFIED) {
      EXPECT_EQ(kind, ErrorKind::kGuestFailed);
      EXPECT_EQ(code, Status::Code::kInternal);
      continue;
    }
    // And back: the Status::Code's row names this wire code and no other.
    EXPECT_EQ(error_code_row(code)->wire, w) << v1::ErrorCode_Name(static_cast<v1::ErrorCode>(w));
    // A kind other than guest_failed comes from one wire code only.
    if (kind != ErrorKind::kGuestFailed) {
      EXPECT_TRUE(kinds_seen.insert(kind).second) << error_kind_name(kind) << " comes from two wire codes";
      EXPECT_STREQ(error_kind_name(kind), code_name(code)) << w;
    }
  }
  EXPECT_EQ(kinds_seen.size(), 9u);  // every wire code but UNSPECIFIED, INTERNAL and IO keeps its own kind
}

TEST(ErrorTable, TheCodesTheGuestFoldsIntoGuestFailed) {
  EXPECT_EQ(kind_from_wire(v1::ERROR_CODE_INTERNAL), ErrorKind::kGuestFailed);
  EXPECT_EQ(kind_from_wire(v1::ERROR_CODE_IO), ErrorKind::kGuestFailed);
  EXPECT_EQ(code_from_wire(v1::ERROR_CODE_IO), Status::Code::kIoError);
  EXPECT_EQ(code_from_wire(v1::ERROR_CODE_INTERNAL), Status::Code::kInternal);
}

TEST(ErrorTable, UnknownWireCodesFromANewerPeerAreGuestFailedAndInternal) {
  for (int w : {v1::ErrorCode_MAX + 1, 100, 1 << 30, -1}) {
    EXPECT_EQ(kind_from_wire(w), ErrorKind::kGuestFailed) << w;
    EXPECT_EQ(code_from_wire(w), Status::Code::kInternal) << w;
  }
}

TEST(ErrorTable, StatusCodesThatNeverCrossTheWire) {
  std::set<std::string> local;
  for (const ErrorCodeRow& row : kErrorCodes) {
    if (row.wire == wire_code::kNone) local.insert(row.name);
  }
  EXPECT_EQ(local, (std::set<std::string>{"ok", "disconnected", "protocol"}));
}

TEST(ErrorTable, StatusCodeNames) {
  ASSERT_EQ(kErrorCodeCount, 14u);
  EXPECT_STREQ(code_name(Status::Code::kOk), "ok");
  EXPECT_STREQ(code_name(Status::Code::kIoError), "io_error");
  EXPECT_STREQ(code_name(Status::Code::kFailedPrecondition), "failed_precondition");
  EXPECT_STREQ(code_name(static_cast<Status::Code>(kErrorCodeCount)), "unknown");
  EXPECT_EQ(Status::error(Status::Code::kFailedPrecondition, "frozen").to_string(), "failed precondition: frozen");
}

TEST(ErrorTable, KindNamesCCodesAndRetryability) {
  ASSERT_EQ(kKindCount, 14u);
  std::set<std::string> names;
  for (int c = QTX_ERR_DISCONNECTED; c <= QTX_ERR_CLOSED; ++c) {
    const auto kind = static_cast<ErrorKind>(c);
    EXPECT_STREQ(qtx_error_kind_name(c), error_kind_name(kind)) << c;
    EXPECT_TRUE(names.insert(error_kind_name(kind)).second) << error_kind_name(kind);
    const bool retryable = kind == ErrorKind::kDisconnected || kind == ErrorKind::kTimeout || kind == ErrorKind::kBusy;
    EXPECT_EQ(Error(kind, "x").retryable(), retryable) << error_kind_name(kind);
  }
  EXPECT_STREQ(qtx_error_kind_name(QTX_OK), "ok");
  EXPECT_STREQ(qtx_error_kind_name(QTX_ERR_CLOSED + 1), "unknown");
  EXPECT_STREQ(qtx_error_kind_name(-1), "unknown");
  EXPECT_STREQ(error_kind_name(static_cast<ErrorKind>(0)), "unknown");
  EXPECT_STREQ(error_kind_name(static_cast<ErrorKind>(QTX_ERR_CLOSED + 1)), "unknown");
  EXPECT_FALSE(Error(static_cast<ErrorKind>(99), "x").retryable());
  EXPECT_EQ(Error(ErrorKind::kFailedPrecondition, "frozen").to_string(), "failed_precondition: frozen");
}

}  // namespace
}  // namespace qtx::host::detail
