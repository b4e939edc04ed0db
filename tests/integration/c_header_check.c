/* qtx/host.h must compile as C99 on its own. */
#include "qtx/host.h"

int qtx_c_header_check(void);
int qtx_c_header_check(void) {
  qtx_error err;
  err.kind = QTX_OK;
  return err.kind + (int)QTX_STATE_READY;
}
