/* qtx/host.h and qtx/host_vm.h must compile as C99 on their own, init
 * functions included. */
#include "qtx/host.h"
#include "qtx/host_vm.h"

int qtx_c_header_check(void);
int qtx_c_header_check(void) {
  qtx_error err;
  qtx_agent_options options;
  qtx_vm_seed seed;
  qtx_vm_user user;
  err.kind = QTX_OK;
  qtx_agent_options_init(&options);
  qtx_vm_seed_init(&seed);
  qtx_vm_user_init(&user);
  if (options.struct_size != sizeof(options) || seed.struct_size != sizeof(seed) || user.struct_size != sizeof(user)) {
    return -1;
  }
  return err.kind + (int)QTX_STATE_READY + seed.network_mode + options.listen + user.sudo;
}
