// QTX_HOST_API marks the symbols libqtx-host exports; everything else in the
// library is hidden.
#pragma once

#if defined(QTX_HOST_BUILDING)
#define QTX_HOST_API __attribute__((visibility("default")))
#else
#define QTX_HOST_API
#endif
