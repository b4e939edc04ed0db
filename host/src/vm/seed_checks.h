// Checks of the values that go into a cloud-init seed. Each returns an
// empty string when the value is good, else why it is not (for a human;
// the caller adds which field it was).
#pragma once

#include <string>

namespace qtx::host::vm::checks {

std::string hostname(const std::string& name);       // RFC 1123, each label 1-63, total <= 253
std::string user_name(const std::string& name);      // POSIX portable, as useradd accepts by default
std::string ssh_public_key(const std::string& key);  // "TYPE BASE64 [COMMENT]", the blob names TYPE
std::string password_hash(const std::string& hash);  // crypt(3): $6$, $5$, $y$, $2b$ ...
std::string package(const std::string& name);        // NAME or NAME=VERSION
std::string instance_id(const std::string& id);
std::string volume_label(const std::string& label);   // ISO 9660 d-characters, 1-32
std::string mac_address(const std::string& mac);      // six hex pairs with colons
std::string interface_name(const std::string& name);  // 1-15, no '/', no spaces
std::string dns_domain(const std::string& name);
// An address without prefix; *v6 tells which family it was.
std::string ip_address(const std::string& text, bool* v6);
// "ADDRESS/PREFIX"; *v6 tells which family it was.
std::string cidr(const std::string& text, bool* v6);
// Whether `address` lies in the subnet of `cidr` (both already checked).
bool in_subnet(const std::string& address, const std::string& cidr);

}  // namespace qtx::host::vm::checks
