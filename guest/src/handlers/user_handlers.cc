// set_password and ssh_keys.
//
// Passwords are hashed here (SHA-512 crypt, 16 random salt characters, as
// chpasswd does) and /etc/shadow is replaced atomically under the passwd
// lock. authorized_keys lives in the user's home: it is reached with
// openat(O_NOFOLLOW) from the home directory, and written as a temporary
// renamed into place, so a user's symlink can never redirect the agent's
// root writes elsewhere.
#include <crypt.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <cerrno>
#include <ctime>
#include <spdlog/spdlog.h>
#include <sstream>

#include "dispatcher.h"
#include "files/path_policy.h"
#include "handlers.h"
#include "qtx/quote.h"
#include "qtx/unique_fd.h"
#include "reply.h"
#include "session.h"
#include "system/accounts.h"
#include "system/atomic_file.h"
#include "telemetry/collector.h"

namespace qtx::agent {
namespace {

// The files read here are never larger (and a FIFO is never read at all:
// read_regular_file refuses it before the first read).
constexpr std::size_t kMaxShadow = 64u << 20;
constexpr std::size_t kMaxAuthorizedKeys = 4u << 20;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// SHA-512 crypt of `password` with a fresh salt; "" on failure.
std::string hash_password(const std::string& password) {
  unsigned char entropy[16];
  if (::getrandom(entropy, sizeof(entropy), 0) != static_cast<ssize_t>(sizeof(entropy))) return "";
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (::crypt_gensalt_rn("$6$", 0, reinterpret_cast<const char*>(entropy), sizeof(entropy), salt, sizeof(salt)) ==
      nullptr) {
    return "";
  }
  crypt_data data{};
  const char* h = ::crypt_r(password.c_str(), salt, &data);
  if (h == nullptr || h[0] == '*') return "";
  return h;
}

// Holds the passwd-family lock (<dir>/.pwd.lock, as lckpwdf(3) does for /etc).
class PasswdLock {
 public:
  explicit PasswdLock(const std::string& shadow) {
    const auto slash = shadow.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : shadow.substr(0, slash);
    fd_.reset(::open((dir + "/.pwd.lock").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (fd_.valid()) ::flock(fd_.get(), LOCK_EX);
  }

 private:
  UniqueFd fd_;
};

bool plausible_key(const std::string& key) {
  if (key.empty() || key.size() > 16384 || key.find('\n') != std::string::npos || key.find('\r') != std::string::npos) {
    return false;
  }
  // [options] type base64 [comment]: some field must name a key type.
  std::istringstream in(key);
  std::string field;
  while (in >> field) {
    if (field.rfind("ssh-", 0) == 0 || field.rfind("ecdsa-", 0) == 0 || field.rfind("sk-", 0) == 0) {
      std::string blob;
      return static_cast<bool>(in >> blob) && blob.size() >= 16;
    }
  }
  return false;
}

// The key's identity, type and blob, so the same key with another comment matches.
std::string key_identity(const std::string& key) {
  std::istringstream in(key);
  std::string field;
  while (in >> field) {
    if (field.rfind("ssh-", 0) == 0 || field.rfind("ecdsa-", 0) == 0 || field.rfind("sk-", 0) == 0) {
      std::string blob;
      in >> blob;
      return field + " " + blob;
    }
  }
  return key;
}

}  // namespace

void handle_set_password(Session& s, std::uint64_t id, const v1::SetPasswordRequest& req) {
  if (req.password().empty() || req.password().find('\0') != std::string::npos) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "the password is empty or contains NUL"));
  }
  if (req.crypted() && (req.password()[0] != '$' || req.password().find_first_of(":\n") != std::string::npos)) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "not a crypt(3) hash"));
  }
  Reply reply(s.weak(), id);
  const AccountFiles accounts = account_files(s.agent().config);
  const std::string shadow = s.agent().config.shadow_file;
  asio::post(s.agent().workers, [reply, req, accounts, shadow] {
    if (!find_user(req.user(), accounts)) {
      return reply.error(v1::ERROR_CODE_NOT_FOUND, "no such user: " + req.user());
    }
    const std::string hash = req.crypted() ? req.password() : hash_password(req.password());
    if (hash.empty()) return reply.error(v1::ERROR_CODE_INTERNAL, "hashing the password failed");
    PasswdLock lock(shadow);
    std::string text;
    if (int err = read_regular_file(AT_FDCWD, shadow, 0, kMaxShadow, &text)) {
      if (err == EINVAL) return reply.error(v1::ERROR_CODE_FAILED_PRECONDITION, shadow + " is not a regular file");
      return reply.send(errno_response("reading " + shadow, err));
    }
    std::string out;
    bool found = false;
    const long today = static_cast<long>(std::time(nullptr) / 86400);
    for (auto& line : lines_of(text)) {
      if (line.rfind(req.user() + ":", 0) == 0) {
        std::vector<std::string> f;
        std::size_t i = 0;
        while (true) {
          std::size_t j = line.find(':', i);
          f.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
          if (j == std::string::npos) break;
          i = j + 1;
        }
        while (f.size() < 9) f.emplace_back();
        f[1] = hash;
        f[2] = std::to_string(today);
        line.clear();
        for (std::size_t k = 0; k < f.size(); ++k) line += (k ? ":" : "") + f[k];
        found = true;
      }
      out += line + "\n";
    }
    if (!found) return reply.error(v1::ERROR_CODE_NOT_FOUND, req.user() + " has no entry in " + shadow);
    if (int err = replace_file(shadow, out, 0640, 0, 0)) return reply.send(errno_response("writing " + shadow, err));
    spdlog::info("audit: password set for {}", printable(req.user()));
    reply.done();
  });
}

void handle_ssh_keys(Session& s, std::uint64_t id, const v1::SshKeysRequest& req) {
  if (req.action() == v1::SshKeysRequest::ACTION_UNSPECIFIED || !v1::SshKeysRequest::Action_IsValid(req.action())) {
    return s.respond(id,
                     error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "ssh_keys needs an action: list, add or remove"));
  }
  if (req.action() == v1::SshKeysRequest::ACTION_ADD) {
    for (const auto& k : req.keys()) {
      if (!plausible_key(k)) {
        return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                            "not an authorized_keys line: \"" + printable(k, 60) + "\""));
      }
    }
  }
  Reply reply(s.weak(), id);
  const AccountFiles accounts = account_files(s.agent().config);
  asio::post(s.agent().workers, [reply, req, accounts] {
    auto user = find_user(req.user(), accounts);
    if (!user) return reply.error(v1::ERROR_CODE_NOT_FOUND, "no such user: " + req.user());
    UniqueFd home(::open(user->home.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!home.valid()) return reply.send(errno_response("home of " + req.user() + " (" + user->home + ")", errno));
    const bool change = req.action() != v1::SshKeysRequest::ACTION_LIST;
    UniqueFd ssh(::openat(home.get(), ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!ssh.valid() && errno == ENOENT && change) {
      if (::mkdirat(home.get(), ".ssh", 0700) != 0) return reply.send(errno_response("creating .ssh", errno));
      ssh.reset(::openat(home.get(), ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (ssh.valid() && ::fchown(ssh.get(), user->uid, user->gid) != 0) {
        return reply.send(errno_response("chown .ssh", errno));
      }
    }
    std::vector<std::string> keys;
    if (ssh.valid()) {
      std::string text;
      const int err = read_regular_file(ssh.get(), "authorized_keys", O_NOFOLLOW, kMaxAuthorizedKeys, &text);
      if (err == 0) {
        for (auto& l : lines_of(text)) {
          if (!l.empty()) keys.push_back(l);
        }
      } else if (err == ELOOP) {
        // A symlink: never read through it (it could point at any file);
        // a change replaces it with a regular file.
        if (!change) return reply.error(v1::ERROR_CODE_DENIED, "authorized_keys of " + req.user() + " is a symlink");
        spdlog::warn("authorized_keys of {} is a symlink: replacing it", printable(req.user()));
      } else if (err == EINVAL) {
        // A FIFO, socket or device (a FIFO would block the reader for ever):
        // neither read nor replaced; its owner has to remove it.
        return reply.error(v1::ERROR_CODE_DENIED, "authorized_keys of " + req.user() + " is not a regular file");
      } else if (err == EFBIG) {
        return reply.error(v1::ERROR_CODE_FAILED_PRECONDITION, "authorized_keys of " + req.user() + " is larger than " +
                                                                   std::to_string(kMaxAuthorizedKeys >> 20) + " MiB");
      } else if (err != ENOENT) {
        return reply.send(errno_response("reading authorized_keys of " + req.user(), err));
      }
    } else if (errno != ENOENT) {
      return reply.send(errno_response(".ssh of " + req.user(), errno));
    }
    if (change) {
      if (!ssh.valid()) return reply.send(errno_response(".ssh of " + req.user(), ENOENT));
      if (req.action() == v1::SshKeysRequest::ACTION_ADD) {
        for (const auto& k : req.keys()) {
          bool present = false;
          for (const auto& e : keys) present |= key_identity(e) == key_identity(k);
          if (!present) keys.push_back(k);
        }
      } else {
        std::vector<std::string> kept;
        for (const auto& e : keys) {
          bool drop = false;
          for (const auto& k : req.keys()) drop |= key_identity(e) == key_identity(k);
          if (!drop) kept.push_back(e);
        }
        keys = std::move(kept);
      }
      std::string text;
      for (const auto& k : keys) text += k + "\n";
      if (int err = replace_file_at(ssh.get(), "authorized_keys", text, 0600, static_cast<int>(user->uid),
                                    static_cast<int>(user->gid), /*force_attrs=*/true)) {
        return reply.send(errno_response("writing authorized_keys of " + req.user(), err));
      }
      spdlog::info("audit: ssh_keys {} for {} ({} keys now)",
                   req.action() == v1::SshKeysRequest::ACTION_ADD ? "add" : "remove", printable(req.user()),
                   keys.size());
    }
    v1::Response r;
    r.mutable_ssh_keys();  // an empty list is still an ssh_keys answer
    for (auto& k : keys) r.mutable_ssh_keys()->add_keys(std::move(k));
    reply.send(std::move(r));
  });
}

}  // namespace qtx::agent
