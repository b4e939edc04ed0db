/* libqtx-host C API, provisioning helpers (the C++ API is qtx/host/vm.h):
 * a qcow2 overlay on a cloud image, a cloud-init NoCloud seed ISO that
 * installs the agent, the agent channel's QEMU arguments or libvirt XML,
 * and a wait for the agent that reports how far it got.
 *
 * Conventions as in qtx/host.h: 0 or a qtx_error_kind; *err filled when
 * not NULL; returned strings are malloc'ed, release them with qtx_free().
 * Structs are read only during the call. Initialise them with their init
 * function (qtx_vm_seed_init, qtx_vm_user_init): it sets struct_size and
 * zeroes the rest, and a zero field asks for the default. */
#ifndef QTX_HOST_VM_H
#define QTX_HOST_VM_H

#include "qtx/host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* flags */
#define QTX_VM_OVERWRITE 1 /* replace an existing, different output file */

/* "20G", "512M", "0" ... to bytes. */
QTX_C_API int qtx_vm_parse_size(const char* text, uint64_t* bytes, qtx_error* err) QTX_NOEXCEPT;

/* A qcow2 overlay `output` on `backing` (format detected). size_bytes 0:
 * the backing file's virtual size. *command (may be NULL) receives the
 * qemu-img command line; *created (may be NULL) is 1 when the overlay was
 * made, 0 when the same overlay was already there. */
QTX_C_API int qtx_vm_create_overlay(const char* backing, const char* output, uint64_t size_bytes, int flags,
                                    char** command, int* created, qtx_error* err) QTX_NOEXCEPT;

typedef struct qtx_vm_user {
  size_t struct_size; /* sizeof(qtx_vm_user) as the caller was compiled; the same in every element */
  const char* name;
  const char* const* ssh_authorized_keys; /* NULL-terminated; may be NULL */
  const char* password_hash;              /* crypt(3) hash, or NULL */
  int sudo;                               /* 1: passwordless sudo */
} qtx_vm_user;

static inline void qtx_vm_user_init(qtx_vm_user* user) {
  memset(user, 0, sizeof(*user));
  user->struct_size = sizeof(*user);
}

typedef enum qtx_vm_network_mode {
  QTX_VM_NETWORK_NONE = 0, /* no network-config: cloud-init's default */
  QTX_VM_NETWORK_DHCP = 1,
  QTX_VM_NETWORK_STATIC = 2
} qtx_vm_network_mode;

/* Lists are NULL-terminated arrays of strings, or NULL. */
typedef struct qtx_vm_seed {
  size_t struct_size;      /* sizeof(qtx_vm_seed) as the caller was compiled */
  const char* hostname;    /* required */
  const char* instance_id; /* NULL: derived from the seed */
  const qtx_vm_user* users;
  size_t n_users;
  const char* const* packages;
  int skip_agent_install;       /* 1: do not install the agent from its ISO */
  const char* agent_iso_label;  /* NULL: QTX_AGENT_TOOLS */
  int no_grow_root;             /* 1: do not grow the root partition and filesystem */
  int network_mode;             /* qtx_vm_network_mode */
  const char* mac;              /* the NIC, by MAC address ... */
  const char* interface;        /* ... or by name */
  const char* const* addresses; /* "ADDRESS/PREFIX" */
  const char* gateway4;
  const char* gateway6;
  const char* const* dns;
  const char* const* search;
} qtx_vm_seed;

/* Zeroes *seed and sets struct_size: every default. */
static inline void qtx_vm_seed_init(qtx_vm_seed* seed) {
  memset(seed, 0, sizeof(*seed));
  seed->struct_size = sizeof(*seed);
}

/* The seed's files, rendered and checked; network_config is "" when the
 * mode is NONE. Any out-pointer may be NULL. */
QTX_C_API int qtx_vm_render_seed(const qtx_vm_seed* seed, char** meta_data, char** user_data, char** network_config,
                                 qtx_error* err) QTX_NOEXCEPT;
/* The seed as a NoCloud ISO (volume id cidata) at `output`. */
QTX_C_API int qtx_vm_write_seed_iso(const qtx_vm_seed* seed, const char* output, int flags, char** instance_id,
                                    int* created, qtx_error* err) QTX_NOEXCEPT;

typedef enum qtx_vm_wiring {
  QTX_VM_WIRING_QEMU = 0,   /* QEMU arguments, one per line */
  QTX_VM_WIRING_LIBVIRT = 1 /* the domain XML <channel> element */
} qtx_vm_wiring;
/* port NULL: org.quantix.agent.0. host_listens 1: QEMU connects to us. */
QTX_C_API int qtx_vm_channel_wiring(const char* socket_path, const char* port, int host_listens, int format,
                                    char** text, qtx_error* err) QTX_NOEXCEPT;

typedef enum qtx_vm_seen {
  QTX_VM_SEEN_SOCKET_ABSENT = 0,
  QTX_VM_SEEN_NO_CONNECTION = 1,
  QTX_VM_SEEN_NO_HANDSHAKE = 2,
  QTX_VM_SEEN_READY = 3
} qtx_vm_seen;
/* 0 when an agent answered within timeout_ms; else QTX_ERR_TIMEOUT with
 * *seen (may be NULL) telling how far it got and err->message why. */
QTX_C_API int qtx_vm_wait_ready(const char* socket_path, uint32_t timeout_ms, int* seen, qtx_error* err) QTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* QTX_HOST_VM_H */
