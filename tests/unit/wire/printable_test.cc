#include "qtx/printable.h"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(Printable, PlainTextAndUtf8PassUnchanged) {
  EXPECT_EQ(qtx::printable("hello, world"), "hello, world");
  EXPECT_EQ(qtx::printable("gr\xc3\xbc\xc3\x9f dich \xe2\x82\xac"), "gr\xc3\xbc\xc3\x9f dich \xe2\x82\xac");
  EXPECT_EQ(qtx::printable(""), "");
}

TEST(Printable, ControlBytesC1ControlsAndBackslashesAreEscaped) {
  EXPECT_EQ(qtx::printable(std::string("a\nb\rc\td\0e\x7f", 10)), "a\\x0ab\\x0dc\\x09d\\x00e\\x7f");
  EXPECT_EQ(qtx::printable("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(qtx::printable("\xc2\x9b" "31m \xc2\x80 \xc2\x9f \xc2\xa0"), "\\xc2\\x9b31m \\xc2\\x80 \\xc2\\x9f \xc2\xa0");
  EXPECT_EQ(qtx::printable("C:\\path"), "C:\\x5cpath");
}

TEST(Printable, LongTextIsCutAtMaxInputBytes) {
  EXPECT_EQ(qtx::printable("abcdef", 3), "abc...");
  EXPECT_EQ(qtx::printable("abc", 3), "abc");
  EXPECT_EQ(qtx::printable("\n\n\n\n", 2), "\\x0a\\x0a...");
  // A C1 pair cut in half at the end: the lone lead byte passes as it is.
  EXPECT_EQ(qtx::printable("x\xc2\x9b", 2), "x\xc2...");
}

}  // namespace
