package qtx

/*
#include <malloc.h>
*/
import "C"

// cHeapInUse is the C heap's bytes in use (glibc mallinfo2), for the tests'
// leak check: the Go heap is not in it.
func cHeapInUse() uint64 {
	mi := C.mallinfo2()
	return uint64(mi.uordblks)
}
