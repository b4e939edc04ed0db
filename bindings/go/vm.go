package qtx

// The provisioning helpers of qtx/host_vm.h (docs/provisioning.md): a
// qcow2 overlay, the cloud-init NoCloud seed that installs the agent, the
// agent channel's QEMU arguments or libvirt XML, and a wait for the agent.
// They need no Manager.

/*
#include <stdlib.h>
#include <string.h>
#include <qtx/host_vm.h>
*/
import "C"

import (
	"strconv"
	"time"
	"unsafe"
)

// ParseSize converts "20G", "512M", "1.5T", "4096", "0"... to bytes
// (qtx_vm_parse_size). A malformed size is KindInvalidArgument.
func ParseSize(text string) (uint64, error) {
	ct := C.CString(text)
	defer C.free(unsafe.Pointer(ct))
	var n C.uint64_t
	var cerr C.qtx_error
	if rc := C.qtx_vm_parse_size(ct, &n, &cerr); rc != 0 {
		return 0, errorFromC(&cerr)
	}
	return uint64(n), nil
}

// Overlay is what CreateOverlay did.
type Overlay struct {
	Command string // the qemu-img command line
	Created bool   // false: the same overlay was already there, left alone
}

// CreateOverlay makes a qcow2 overlay `output` on `backing` (its format
// detected) with qemu-img. sizeBytes 0 keeps the backing file's virtual
// size. A different file already at output is KindAlreadyExists unless
// overwrite; a missing backing file is KindNotFound.
func CreateOverlay(backing, output string, sizeBytes uint64, overwrite bool) (Overlay, error) {
	cb, co := C.CString(backing), C.CString(output)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(co))
	var command *C.char
	var created C.int
	var cerr C.qtx_error
	rc := C.qtx_vm_create_overlay(cb, co, C.uint64_t(sizeBytes), overwriteFlag(overwrite), &command, &created, &cerr)
	if rc != 0 {
		return Overlay{}, errorFromC(&cerr)
	}
	defer C.qtx_free(unsafe.Pointer(command))
	return Overlay{Command: C.GoString(command), Created: created == 1}, nil
}

func overwriteFlag(overwrite bool) C.int {
	if overwrite {
		return C.QTX_VM_OVERWRITE
	}
	return 0
}

// User is one account the seed creates (qtx_vm_user).
type User struct {
	Name              string
	SSHAuthorizedKeys []string
	PasswordHash      string // a crypt(3) hash; "": the password is locked
	Sudo              bool   // passwordless sudo
}

// Network is the seed's network-config mode (qtx_vm_network_mode).
type Network int

// The modes.
const (
	NetworkNone   Network = C.QTX_VM_NETWORK_NONE // no network-config: cloud-init's default
	NetworkDHCP   Network = C.QTX_VM_NETWORK_DHCP
	NetworkStatic Network = C.QTX_VM_NETWORK_STATIC
)

// Seed describes a VM's first boot (qtx_vm_seed). The zero value of every
// field but Hostname is the default.
type Seed struct {
	Hostname         string // required
	InstanceID       string // "": derived from the seed
	Users            []User
	Packages         []string
	SkipAgentInstall bool   // do not install the agent from its ISO
	AgentISOLabel    string // "": QTX_AGENT_TOOLS
	NoGrowRoot       bool   // do not grow the root partition and filesystem
	Network          Network
	MAC              string   // the NIC, by MAC address ...
	Interface        string   // ... or by name
	Addresses        []string // "ADDRESS/PREFIX"
	Gateway4         string
	Gateway6         string
	DNS              []string
	Search           []string
}

// SeedFiles are the seed's rendered files.
type SeedFiles struct {
	MetaData      string
	UserData      string
	NetworkConfig string // "" when Network is NetworkNone
}

// cSeed is a qtx_vm_seed in C memory with everything it points to (cgo
// forbids passing C Go memory that holds Go pointers); free releases all.
type cSeed struct {
	seed  *C.qtx_vm_seed
	alloc []unsafe.Pointer
}

func (s *cSeed) malloc(n C.size_t) unsafe.Pointer {
	p := C.calloc(1, n)
	if p == nil {
		panic("qtx: out of C memory")
	}
	s.alloc = append(s.alloc, p)
	return p
}

// str is NULL for "", so that an empty field asks for the default.
func (s *cSeed) str(v string) *C.char {
	if v == "" {
		return nil
	}
	p := C.CString(v)
	s.alloc = append(s.alloc, unsafe.Pointer(p))
	return p
}

// list is a NULL-terminated array, or NULL for an empty list. Its strings
// are never NULL, so that an "" element reaches the library's checks.
func (s *cSeed) list(v []string) **C.char {
	if len(v) == 0 {
		return nil
	}
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	arr := (*[1 << 28]*C.char)(s.malloc(C.size_t(len(v)+1) * ptrSize))[: len(v)+1 : len(v)+1]
	for i, e := range v {
		p := C.CString(e)
		s.alloc = append(s.alloc, unsafe.Pointer(p))
		arr[i] = p
	}
	arr[len(v)] = nil
	return &arr[0]
}

func (s *cSeed) free() {
	for _, p := range s.alloc {
		C.free(p)
	}
	s.alloc = nil
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// newCSeed copies g into C memory. The users are one array of
// qtx_vm_user, each initialised by qtx_vm_user_init: its struct_size is
// the stride the library steps by.
func newCSeed(g *Seed) *cSeed {
	s := &cSeed{}
	s.seed = (*C.qtx_vm_seed)(s.malloc(C.sizeof_qtx_vm_seed))
	c := s.seed
	C.qtx_vm_seed_init(c)
	c.hostname = s.str(g.Hostname)
	c.instance_id = s.str(g.InstanceID)
	if n := len(g.Users); n > 0 {
		users := (*[1 << 20]C.qtx_vm_user)(s.malloc(C.size_t(n) * C.sizeof_qtx_vm_user))[:n:n]
		for i := range g.Users {
			u := &users[i]
			C.qtx_vm_user_init(u)
			// Name is passed as is ("" too): a user without a name is the
			// library's to refuse, not a default.
			name := C.CString(g.Users[i].Name)
			s.alloc = append(s.alloc, unsafe.Pointer(name))
			u.name = name
			u.ssh_authorized_keys = s.list(g.Users[i].SSHAuthorizedKeys)
			u.password_hash = s.str(g.Users[i].PasswordHash)
			u.sudo = cBool(g.Users[i].Sudo)
		}
		c.users = &users[0]
		c.n_users = C.size_t(n)
	}
	c.packages = s.list(g.Packages)
	c.skip_agent_install = cBool(g.SkipAgentInstall)
	c.agent_iso_label = s.str(g.AgentISOLabel)
	c.no_grow_root = cBool(g.NoGrowRoot)
	c.network_mode = C.int(g.Network)
	c.mac = s.str(g.MAC)
	c._interface = s.str(g.Interface)
	c.addresses = s.list(g.Addresses)
	c.gateway4 = s.str(g.Gateway4)
	c.gateway6 = s.str(g.Gateway6)
	c.dns = s.list(g.DNS)
	c.search = s.list(g.Search)
	return s
}

// takeString copies and frees a string the library returned.
func takeString(p *C.char) string {
	defer C.qtx_free(unsafe.Pointer(p))
	return C.GoString(p)
}

// RenderSeed renders and checks the seed's files (qtx_vm_render_seed). A
// seed the library refuses (no hostname, a gateway outside the addresses'
// subnets, ...) is KindInvalidArgument with the reason in Message.
func RenderSeed(seed Seed) (SeedFiles, error) {
	s := newCSeed(&seed)
	defer s.free()
	var meta, user, net *C.char
	var cerr C.qtx_error
	if rc := C.qtx_vm_render_seed(s.seed, &meta, &user, &net, &cerr); rc != 0 {
		return SeedFiles{}, errorFromC(&cerr)
	}
	return SeedFiles{MetaData: takeString(meta), UserData: takeString(user), NetworkConfig: takeString(net)}, nil
}

// SeedISO is what WriteSeedISO did.
type SeedISO struct {
	InstanceID string
	Created    bool // false: the same seed ISO was already there, left alone
}

// WriteSeedISO writes the seed as a NoCloud ISO (volume id cidata) at
// output (qtx_vm_write_seed_iso). A different file already there is
// KindAlreadyExists unless overwrite. The seed is checked before anything
// is written.
func WriteSeedISO(seed Seed, output string, overwrite bool) (SeedISO, error) {
	s := newCSeed(&seed)
	defer s.free()
	co := C.CString(output)
	defer C.free(unsafe.Pointer(co))
	var id *C.char
	var created C.int
	var cerr C.qtx_error
	if rc := C.qtx_vm_write_seed_iso(s.seed, co, overwriteFlag(overwrite), &id, &created, &cerr); rc != 0 {
		return SeedISO{}, errorFromC(&cerr)
	}
	return SeedISO{InstanceID: takeString(id), Created: created == 1}, nil
}

// Wiring is ChannelWiring's output format (qtx_vm_wiring).
type Wiring int

// The formats.
const (
	WiringQEMU    Wiring = C.QTX_VM_WIRING_QEMU    // QEMU arguments, one per line
	WiringLibvirt Wiring = C.QTX_VM_WIRING_LIBVIRT // the domain XML <channel> element
)

// ChannelWiring gives the agent channel's QEMU arguments or libvirt XML
// for the socket (qtx_vm_channel_wiring). port "": org.quantix.agent.0.
// hostListens: QEMU connects to a socket the host listens on.
func ChannelWiring(socketPath, port string, hostListens bool, format Wiring) (string, error) {
	cs := C.CString(socketPath)
	defer C.free(unsafe.Pointer(cs))
	var cp *C.char
	if port != "" {
		cp = C.CString(port)
		defer C.free(unsafe.Pointer(cp))
	}
	var text *C.char
	var cerr C.qtx_error
	if rc := C.qtx_vm_channel_wiring(cs, cp, cBool(hostListens), C.int(format), &text, &cerr); rc != 0 {
		return "", errorFromC(&cerr)
	}
	return takeString(text), nil
}

// Seen is how far WaitReady got (qtx_vm_seen).
type Seen int

// The stages, in order.
const (
	SeenSocketAbsent Seen = C.QTX_VM_SEEN_SOCKET_ABSENT
	SeenNoConnection Seen = C.QTX_VM_SEEN_NO_CONNECTION
	SeenNoHandshake  Seen = C.QTX_VM_SEEN_NO_HANDSHAKE
	SeenReady        Seen = C.QTX_VM_SEEN_READY
)

var seenNames = [...]string{"socket_absent", "no_connection", "no_handshake", "ready"}

func (s Seen) String() string {
	if s < 0 || int(s) >= len(seenNames) {
		return "seen(" + strconv.Itoa(int(s)) + ")"
	}
	return seenNames[s]
}

// WaitReady blocks until an agent answers on socketPath or timeout passes
// (qtx_vm_wait_ready; rounded up to a millisecond, at most 49 days). It
// returns how far it got: SeenReady with a nil error, or an earlier stage
// with a KindTimeout *Error whose Message says why. The wait runs in the
// library and is not cancellable: it blocks its OS thread for up to
// timeout.
func WaitReady(socketPath string, timeout time.Duration) (Seen, error) {
	cs := C.CString(socketPath)
	defer C.free(unsafe.Pointer(cs))
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	if ms < 1 {
		ms = 1
	}
	if ms > 0xFFFFFFFF {
		ms = 0xFFFFFFFF
	}
	seen := C.int(SeenSocketAbsent)
	var cerr C.qtx_error
	if rc := C.qtx_vm_wait_ready(cs, C.uint32_t(ms), &seen, &cerr); rc != 0 {
		return Seen(seen), errorFromC(&cerr)
	}
	return Seen(seen), nil
}
