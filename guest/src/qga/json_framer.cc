#include "qga/json_framer.h"

namespace qtx::agent::qga {
namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

void JsonFramer::feed(const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) byte(static_cast<unsigned char>(data[i]));
  scanned_ += n;
}

void JsonFramer::reset() {
  buf_.clear();
  depth_ = 0;
  in_string_ = escape_ = discarding_ = false;
}

void JsonFramer::append(unsigned char c) {
  if (discarding_) return;
  if (buf_.size() >= limits_.max_message) {
    buf_.clear();
    buf_.shrink_to_fit();  // give the megabyte back while the rest is skipped
    discarding_ = true;
    sink_(Event::kTooLarge, {});
    return;
  }
  buf_.push_back(static_cast<char>(c));
}

void JsonFramer::emit_text() {
  if (discarding_) {
    discarding_ = false;  // the overflowed text ended: frame afresh
  } else if (!buf_.empty()) {
    emitted_ += buf_.size();
    sink_(Event::kText, buf_);
  }
  buf_.clear();
}

// A top-level scalar (number, literal, or garbage) ends here.
void JsonFramer::flush_scalar() {
  if (!buf_.empty() || discarding_) emit_text();
}

void JsonFramer::byte(unsigned char c) {
  if (c == 0xFF) {
    reset();
    sink_(Event::kSentinel, {});
    return;
  }
  if (in_string_) {
    append(c);
    if (escape_) {
      escape_ = false;
    } else if (c == '\\') {
      escape_ = true;
    } else if (c == '"') {
      in_string_ = false;
      if (depth_ == 0) emit_text();  // a top-level string
    }
    return;
  }
  if (depth_ == 0) {
    if (is_space(c)) return flush_scalar();
    if (c == '{' || c == '[') {
      flush_scalar();
      depth_ = 1;
      append(c);
      return;
    }
    if (c == '}' || c == ']') {
      flush_scalar();
      sink_(Event::kStrayClose, {});
      return;
    }
    if (c == '"') {
      flush_scalar();
      in_string_ = true;
      append(c);
      return;
    }
    append(c);  // part of a top-level scalar
    return;
  }
  append(c);
  if (c == '"') {
    in_string_ = true;
  } else if (c == '{' || c == '[') {
    ++depth_;
    if (depth_ > limits_.max_depth && !discarding_) {
      buf_.clear();
      buf_.shrink_to_fit();
      discarding_ = true;
      sink_(Event::kTooDeep, {});
    }
  } else if (c == '}' || c == ']') {
    if (--depth_ == 0) emit_text();
  }
}

}  // namespace qtx::agent::qga
