#include "qtx/wire/sha256.h"

#include <nettle/sha2.h>

#include <new>

namespace qtx::wire {
namespace {

static_assert(sizeof(sha256_ctx) <= sizeof(Sha256) && alignof(sha256_ctx) <= alignof(Sha256),
              "Sha256::ctx_ does not hold this Nettle's sha256_ctx: resize it in sha256.h");
static_assert(std::tuple_size<Sha256::Digest>::value == SHA256_DIGEST_SIZE);

// ctx_ is aligned for a sha256_ctx (above), which the constructor placed there.
sha256_ctx* ctx_of(unsigned char* storage) {
  return std::launder(static_cast<sha256_ctx*>(static_cast<void*>(storage)));
}

}  // namespace

Sha256::Sha256() { sha256_init(new (ctx_) sha256_ctx); }

void Sha256::update(const void* data, std::size_t n) {
  if (n != 0) sha256_update(ctx_of(ctx_), n, static_cast<const std::uint8_t*>(data));
}

Sha256::Digest Sha256::finish() {
  Digest d;
  sha256_digest(ctx_of(ctx_), d.size(), d.data());
  return d;
}

Sha256::Digest Sha256::of(std::string_view s) {
  Sha256 h;
  h.update(s);
  return h.finish();
}

std::string Sha256::hex(const Digest& d) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * d.size());
  for (auto b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace qtx::wire
