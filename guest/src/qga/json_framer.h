// JsonFramer: cuts the qemu-ga byte stream into whole JSON texts, without
// parsing them. qemu-ga's clients send a stream of JSON values, not
// necessarily one per line; a value ends where its outermost brace or
// bracket closes (or, for a top-level scalar, at the next whitespace or
// structural character). A 0xFF byte (never valid in UTF-8 JSON) resets the
// framer: that is how a client resynchronises after garbage.
//
// Cost: every byte is looked at once, in O(1) (string/escape/depth state
// only); a text is handed on whole exactly once. Memory: at most
// `max_message` bytes are held. A text over `max_message` bytes or nested
// over `max_depth` levels is reported once and then discarded, byte by byte
// without buffering, until its outermost level closes (or a 0xFF arrives):
// the bytes after it are framed afresh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace qtx::agent::qga {

class JsonFramer {
 public:
  struct Limits {
    std::size_t max_message = 1u << 20;  // bytes of one JSON text
    std::size_t max_depth = 64;          // nested objects/arrays
  };
  enum class Event {
    kText,        // a whole JSON text (`text` holds it; it may still be invalid JSON)
    kSentinel,    // a 0xFF byte: whatever was partial is dropped
    kStrayClose,  // '}' or ']' outside any value
    kTooLarge,    // a text exceeded max_message; the rest of it is discarded
    kTooDeep,     // a text exceeded max_depth; the rest of it is discarded
  };
  // Called synchronously from feed(); `text` is valid only during the call.
  using Sink = std::function<void(Event, std::string_view text)>;

  JsonFramer(Limits limits, Sink sink) : limits_(limits), sink_(std::move(sink)) {}

  void feed(const char* data, std::size_t n);
  // Drops any partial text (as a 0xFF does, without reporting it).
  void reset();

  // Nothing partial is held.
  bool idle() const { return depth_ == 0 && !in_string_ && buf_.empty() && !discarding_; }
  // Bytes given to feed() so far: each is scanned once.
  std::uint64_t bytes_scanned() const { return scanned_; }
  // Bytes handed on in kText events so far (each at most once).
  std::uint64_t bytes_emitted() const { return emitted_; }

 private:
  void byte(unsigned char c);
  void append(unsigned char c);
  void emit_text();
  void flush_scalar();

  const Limits limits_;
  Sink sink_;
  std::string buf_;
  std::uint64_t depth_ = 0;  // open objects/arrays (counted on while discarding)
  bool in_string_ = false;
  bool escape_ = false;
  bool discarding_ = false;  // the current text overflowed: drop until it ends
  std::uint64_t scanned_ = 0;
  std::uint64_t emitted_ = 0;
};

}  // namespace qtx::agent::qga
