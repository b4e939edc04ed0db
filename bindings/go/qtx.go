// Package qtx drives qtx guest agents from Go through libqtx-host's C API.
//
// A Manager owns one I/O thread of the library; each Agent is one
// connection (a VM's virtio-serial socket). Every call takes a
// context.Context: its deadline becomes the call's timeout and its
// cancellation cancels the call in the library and in the guest. Errors are
// *Error values that errors.Is matches against the sentinels (ErrDenied,
// ErrTimeout, ...) and, for calls ended by their context, against
// context.Canceled and context.DeadlineExceeded.
//
// Everything here is safe for concurrent use. Unary calls are asynchronous
// in the library: a call in flight costs a goroutine, not an OS thread.
// Streams (exec output, transfers) block an OS thread each while they wait.
//
// Build: the library and its header must be found by cgo, either installed
// (pkg-config qtx-host gives the flags) or through CGO_CFLAGS/CGO_LDFLAGS for
// a build tree; see docs/go.md.
package qtx

/*
#cgo LDFLAGS: -lqtx-host
#include <qtx/host.h>
*/
import "C"

import "fmt"

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.qtx_version_string()) }

// HeaderVersion is the version of the C header this package was built with.
const HeaderVersion = C.QTX_VERSION

// checkVersion refuses a library whose major (its soname) differs from the
// header's; cgo links against the soname, so this only fails on a broken
// installation.
func checkVersion() error {
	lib := uint32(C.qtx_version())
	if lib>>16 != uint32(C.QTX_VERSION_MAJOR) {
		return fmt.Errorf("qtx: library version %s has another major than the header's %d", Version(), C.QTX_VERSION_MAJOR)
	}
	return nil
}
