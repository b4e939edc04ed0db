/* qtx/host.h and qtx/host_vm.h must compile as C99 on their own. */
#include "qtx/host.h"
#include "qtx/host_vm.h"

int qtx_c_header_check(void);
int qtx_c_header_check(void) {
  qtx_error err;
  err.kind = QTX_OK;
  qtx_vm_seed seed = {0};
  return err.kind + (int)QTX_STATE_READY + seed.network_mode;
}
