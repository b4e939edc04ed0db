// QgaState: what the qemu-ga protocol keeps between requests and across
// sessions, as qemu-ga does (a file handle or an exec'd process outlives the
// client that opened it until it is closed or collected). Owned by the
// QgaService through a shared_ptr, which asynchronous commands copy so that
// a job finishing after the service stopped still has its state. Used on the
// io thread only.
#pragma once

namespace qtx::agent::qga {

struct QgaState {};

}  // namespace qtx::agent::qga
