#include <catch2/catch.hpp>

#include "ansi.hpp"
#include "terminal_text.hpp"

using namespace cltoken::ctl;

TEST_CASE("one_line folds white space and neutralises control characters", "[text]") {
  CHECK(one_line("plain") == "plain");
  CHECK(one_line("  two\nlines\r\n\tand  tabs ") == "two lines and tabs");
  // An escape sequence from upstream must not reach the terminal as one.
  CHECK(one_line("red \x1b[31mtext") == "red \xEF\xBF\xBD[31mtext");
  CHECK(one_line(std::string("nul\0byte", 8)) == "nul\xEF\xBF\xBD"
                                                 "byte");
  CHECK(one_line("del\x7F") == "del\xEF\xBF\xBD");
  // C1 control (U+009B, CSI) encoded in UTF-8.
  CHECK(one_line("c1\xC2\x9B"
                 "1m") == "c1\xEF\xBF\xBD"
                          "1m");
  CHECK(one_line("caf\xC3\xA9 \xE2\x80\x94 ok") == "caf\xC3\xA9 \xE2\x80\x94 ok");
}

TEST_CASE("one_line replaces invalid UTF-8 byte by byte", "[text]") {
  CHECK(one_line("a\xFF"
                 "b") == "a\xEF\xBF\xBD"
                         "b");
  CHECK(one_line("overlong \xC0\xAF") == "overlong \xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(one_line("cut \xE2\x80") == "cut \xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(one_line("surrogate \xED\xA0\x80") == "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("display width counts code points", "[text]") {
  CHECK(display_width("") == 0);
  CHECK(display_width("abc") == 3);
  CHECK(display_width("\xE2\x80\x94") == 1);
  CHECK(display_width("caf\xC3\xA9") == 4);
  CHECK(pad_right("\xE2\x80\x94", 3) == "\xE2\x80\x94  ");
  CHECK(pad_right("toolong", 3) == "toolong");
}

TEST_CASE("truncation keeps words whole when that costs little", "[text]") {
  CHECK(truncate_to_width("short", 10) == "short");
  CHECK(truncate_to_width("exactly10!", 10) == "exactly10!");
  CHECK(truncate_to_width("connection refused by auth.commercelayer.io", 30) == "connection refused by\xE2\x80\xA6");
  // No space near the cut: cut inside the word.
  CHECK(truncate_to_width("abcdefghijklmnopqrstuvwxyz", 10) == "abcdefghi\xE2\x80\xA6");
  // Never more columns than asked, multi-byte characters included.
  CHECK(display_width(truncate_to_width("\xE2\x80\x94\xE2\x80\x94\xE2\x80\x94\xE2\x80\x94", 3)) == 3);
  CHECK(truncate_to_width("anything", 0).empty());
  CHECK(truncate_to_width("ab", 1) == "\xE2\x80\xA6");
}

TEST_CASE("colour only on a terminal and only without NO_COLOR", "[text]") {
  CHECK(colour_wanted(true, nullptr, "xterm-256color"));
  CHECK(colour_wanted(true, "", nullptr));
  CHECK_FALSE(colour_wanted(false, nullptr, "xterm"));
  CHECK_FALSE(colour_wanted(true, "1", "xterm"));
  CHECK_FALSE(colour_wanted(true, nullptr, "dumb"));
  CHECK(paint("fresh", Colour::green) == "\x1b[32mfresh\x1b[0m");
  CHECK(paint("x", Colour::none) == "x");
}
