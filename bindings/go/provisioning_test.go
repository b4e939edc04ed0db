package qtx_test

// The provisioning helpers (vm.go): exact outputs as
// tests/integration/c_api_test.cc's ProvisioningHelpers expects from the C
// API, and the real tools (xorriso, qemu-img) and agent where present.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qtx.dev/qtx"
)

const (
	testKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g c"
	testHash = "$6$saltsalt$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	install  = `  - ["sh", "-c", "udevadm settle --timeout=30 || true; mkdir -p /run/qtx-iso && mount -o ro ` +
		`/dev/disk/by-label/QTX_AGENT_TOOLS /run/qtx-iso && sh /run/qtx-iso/install.sh; status=$?; ` +
		`umount /run/qtx-iso 2>/dev/null; exit $status"]` + "\n"
)

func fullSeed() qtx.Seed {
	return qtx.Seed{
		Hostname: "vm1",
		Users:    []qtx.User{{Name: "ops", SSHAuthorizedKeys: []string{testKey}, PasswordHash: testHash, Sudo: true}},
		Packages: []string{"htop", "curl=7.88.1-10"},
		Network:  qtx.NetworkStatic, MAC: "52:54:00:00:00:01", Addresses: []string{"192.0.2.10/24"},
		Gateway4: "192.0.2.1", DNS: []string{"192.0.2.53"}, Search: []string{"example.org"},
	}
}

func expectKind(t *testing.T, err error, sentinel *qtx.Error) *qtx.Error {
	t.Helper()
	e := asError(t, err)
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want kind %v", err, sentinel.Kind)
	}
	return e
}

func TestParseSize(t *testing.T) {
	for text, want := range map[string]uint64{"20G": 20 << 30, "512M": 512 << 20, "1.5T": 3 << 39,
		"20GiB": 20 << 30, "4096": 4096, "0": 0} {
		got, err := qtx.ParseSize(text)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", text, got, err, want)
		}
	}
	_, err := qtx.ParseSize("20Q")
	e := expectKind(t, err, qtx.ErrInvalidArgument)
	if e.Kind != qtx.KindInvalidArgument || e.Message == "" {
		t.Errorf("ParseSize(20Q): %#v", e)
	}
}

func instanceID(t *testing.T, meta string) string {
	t.Helper()
	parts := strings.Split(meta, `"`)
	if len(parts) < 2 {
		t.Fatalf("meta-data without an instance-id: %q", meta)
	}
	return parts[1]
}

func TestRenderSeedExact(t *testing.T) {
	files, err := qtx.RenderSeed(fullSeed())
	if err != nil {
		t.Fatal(err)
	}
	id := instanceID(t, files.MetaData)
	if !strings.HasPrefix(id, "qtx-") || len(id) != len("qtx-")+16 {
		t.Errorf("instance id %q", id)
	}
	if want := fmt.Sprintf("instance-id: %q\nlocal-hostname: \"vm1\"\n", id); files.MetaData != want {
		t.Errorf("meta-data:\n%s\nwant:\n%s", files.MetaData, want)
	}
	wantUser := "#cloud-config\n" +
		"# Written by qtx: first-boot setup of this VM and its guest agent.\n" +
		"hostname: \"vm1\"\n" +
		"manage_etc_hosts: true\n" +
		"users:\n" +
		"  - name: \"ops\"\n" +
		"    shell: \"/bin/bash\"\n" +
		"    lock_passwd: false\n" +
		"    passwd: \"" + testHash + "\"\n" +
		"    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n" +
		"    ssh_authorized_keys:\n" +
		"      - \"" + testKey + "\"\n" +
		"package_update: true\n" +
		"packages:\n" +
		"  - \"htop\"\n" +
		"  - \"curl=7.88.1-10\"\n" +
		"growpart:\n" +
		"  mode: \"auto\"\n" +
		"  devices:\n" +
		"    - \"/\"\n" +
		"  ignore_growroot_disabled: false\n" +
		"resize_rootfs: true\n" +
		"runcmd:\n" + install
	if files.UserData != wantUser {
		t.Errorf("user-data:\n%s\nwant:\n%s", files.UserData, wantUser)
	}
	wantNet := "# cloud-init network config, version 2 (written by qtx)\n" +
		"version: 2\n" +
		"ethernets:\n" +
		"  primary:\n" +
		"    match:\n" +
		"      macaddress: \"52:54:00:00:00:01\"\n" +
		"    dhcp4: false\n" +
		"    addresses:\n" +
		"      - \"192.0.2.10/24\"\n" +
		"    gateway4: \"192.0.2.1\"\n" +
		"    nameservers:\n" +
		"      addresses:\n" +
		"        - \"192.0.2.53\"\n" +
		"      search:\n" +
		"        - \"example.org\"\n"
	if files.NetworkConfig != wantNet {
		t.Errorf("network-config:\n%s\nwant:\n%s", files.NetworkConfig, wantNet)
	}
	// The same seed is the same instance; a changed one is another.
	again, err := qtx.RenderSeed(fullSeed())
	if err != nil || again != files {
		t.Errorf("the same seed rendered differently: %v", err)
	}
	other := fullSeed()
	other.Packages = []string{"htop"}
	if o, err := qtx.RenderSeed(other); err != nil || o.MetaData == files.MetaData {
		t.Errorf("another seed kept the instance id: %v", err)
	}
}

// c_api_test ProvisioningHelpers' seed, field for field, and its checks.
func TestRenderSeedAsTheCAPITestExpects(t *testing.T) {
	seed := qtx.Seed{Hostname: "vm1", Users: []qtx.User{{Name: "ops", SSHAuthorizedKeys: []string{testKey}}},
		Network: qtx.NetworkStatic, MAC: "52:54:00:00:00:01", Addresses: []string{"192.0.2.10/24"},
		Gateway4: "192.0.2.1"}
	files, err := qtx.RenderSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    ssh_authorized_keys:\n      - \"ssh-ed25519 ", "install.sh",
		"growpart:\n  mode: \"auto\"", "    lock_passwd: true\n"} {
		if !strings.Contains(files.UserData, want) {
			t.Errorf("user-data lacks %q:\n%s", want, files.UserData)
		}
	}
	if strings.Contains(files.UserData, "sudo") {
		t.Errorf("user-data gives sudo:\n%s", files.UserData)
	}
	if !strings.Contains(files.NetworkConfig, "    gateway4: \"192.0.2.1\"\n") {
		t.Errorf("network-config:\n%s", files.NetworkConfig)
	}
	if !strings.HasPrefix(files.MetaData, "instance-id: \"qtx-") {
		t.Errorf("meta-data:\n%s", files.MetaData)
	}

	seed.Gateway4 = "198.51.100.1"
	_, err = qtx.RenderSeed(seed)
	e := expectKind(t, err, qtx.ErrInvalidArgument)
	if want := "gateway \"198.51.100.1\" is in none of the addresses' subnets: the guest could not reach it"; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	seed.Gateway4 = "192.0.2.1"
	seed.Network = 7 // not a mode
	_, err = qtx.RenderSeed(seed)
	expectKind(t, err, qtx.ErrInvalidArgument)
}

func TestRenderSeedDefaultsAndOptions(t *testing.T) {
	render := func(s qtx.Seed) qtx.SeedFiles {
		t.Helper()
		f, err := qtx.RenderSeed(s)
		if err != nil {
			t.Fatalf("RenderSeed(%+v): %v", s, err)
		}
		return f
	}
	f := render(qtx.Seed{Hostname: "vm1"})
	if f.NetworkConfig != "" || strings.Contains(f.UserData, "users:") || strings.Contains(f.UserData, "packages:") ||
		!strings.HasSuffix(f.UserData, "runcmd:\n"+install) {
		t.Errorf("defaults:\n%s\n%s", f.UserData, f.NetworkConfig)
	}
	f = render(qtx.Seed{Hostname: "vm1", InstanceID: "i-1", SkipAgentInstall: true, NoGrowRoot: true})
	if f.MetaData != "instance-id: \"i-1\"\nlocal-hostname: \"vm1\"\n" || strings.Contains(f.UserData, "install.sh") ||
		!strings.Contains(f.UserData, "growpart:\n  mode: \"off\"\nresize_rootfs: false\n") {
		t.Errorf("options:\n%s\n%s", f.MetaData, f.UserData)
	}
	if f = render(qtx.Seed{Hostname: "vm1", AgentISOLabel: "MY_TOOLS"}); !strings.Contains(f.UserData, "/dev/disk/by-label/MY_TOOLS ") {
		t.Errorf("label:\n%s", f.UserData)
	}
	f = render(qtx.Seed{Hostname: "vm1", Network: qtx.NetworkDHCP, Interface: "eth0"})
	if !strings.Contains(f.NetworkConfig, "    match:\n      name: \"eth0\"\n") || !strings.Contains(f.NetworkConfig, "    dhcp4: true\n") {
		t.Errorf("dhcp:\n%s", f.NetworkConfig)
	}
	// Two users: the array strides by each element's struct_size.
	f = render(qtx.Seed{Hostname: "vm1", Users: []qtx.User{{Name: "alice"}, {Name: "bob", Sudo: true}}})
	if !strings.Contains(f.UserData, "  - name: \"alice\"\n") || !strings.Contains(f.UserData, "  - name: \"bob\"\n") ||
		strings.Count(f.UserData, "NOPASSWD") != 1 {
		t.Errorf("two users:\n%s", f.UserData)
	}
	for _, bad := range []qtx.Seed{{}, {Hostname: "vm1", Users: []qtx.User{{Name: "root"}}},
		{Hostname: "vm1", Packages: []string{"a b"}}, {Hostname: "vm1", Packages: []string{""}},
		{Hostname: "vm1", Users: []qtx.User{{Name: "ops", PasswordHash: "secret"}}}} {
		_, err := qtx.RenderSeed(bad)
		expectKind(t, err, qtx.ErrInvalidArgument)
	}
}

// The qtx command, built beside the agent, renders the same files.
func TestRenderSeedMatchesTheCommand(t *testing.T) {
	cli := filepath.Join(filepath.Dir(agentBinary(t)), "qtx")
	if _, err := os.Stat(cli); err != nil {
		t.Skip("the qtx command is not built beside the agent")
	}
	out, err := exec.Command(cli, "vm", "seed", "--hostname", "vm1", "--user", "ops", "--ssh-key", testKey,
		"--password-hash", testHash, "--sudo", "--package", "htop", "--package", "curl=7.88.1-10",
		"--mac", "52:54:00:00:00:01", "--address", "192.0.2.10/24", "--gateway", "192.0.2.1",
		"--dns", "192.0.2.53", "--search", "example.org", "--print").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	name := ""
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if strings.HasPrefix(line, "--- ") {
			name = strings.TrimSpace(line[4:])
			got[name] = ""
		} else if line != "" {
			got[name] += line
		}
	}
	files, err := qtx.RenderSeed(fullSeed())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"meta-data": files.MetaData, "user-data": files.UserData, "network-config": files.NetworkConfig}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the command printed:\n%v\nthe binding rendered:\n%v", got, want)
	}
}

func TestWriteSeedISOIsIdempotent(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso is not installed")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "seed.iso")
	first, err := qtx.WriteSeedISO(fullSeed(), out, false)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := qtx.RenderSeed(fullSeed())
	if !first.Created || first.InstanceID != instanceID(t, files.MetaData) {
		t.Errorf("first write: %+v", first)
	}
	image, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(image) < 0x8030 || string(image[0x8001:0x8006]) != "CD001" || string(image[0x8028:0x802e]) != "cidata" {
		t.Fatalf("not an ISO 9660 image with volume id cidata")
	}
	again, err := qtx.WriteSeedISO(fullSeed(), out, false)
	if err != nil || again != (qtx.SeedISO{InstanceID: first.InstanceID, Created: false}) {
		t.Errorf("second write: %+v, %v", again, err)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, image) {
		t.Error("the second write changed the file")
	}
	other := fullSeed()
	other.Packages = nil
	_, err = qtx.WriteSeedISO(other, out, false)
	expectKind(t, err, qtx.ErrAlreadyExists)
	if r, err := qtx.WriteSeedISO(other, out, true); err != nil || !r.Created {
		t.Errorf("overwrite: %+v, %v", r, err)
	}
	bad := filepath.Join(dir, "bad.iso")
	_, err = qtx.WriteSeedISO(qtx.Seed{Hostname: "-bad-"}, bad, false)
	expectKind(t, err, qtx.ErrInvalidArgument)
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("a refused seed left a file")
	}
}

func TestChannelWiring(t *testing.T) {
	q, err := qtx.ChannelWiring("/run/vm1.sock", "", false, qtx.WiringQEMU)
	if want := "-chardev\nsocket,id=qtx0,path=/run/vm1.sock,server=on,wait=off\n" +
		"-device\nvirtio-serial-pci,id=qtx0-serial\n" +
		"-device\nvirtserialport,bus=qtx0-serial.0,chardev=qtx0,name=org.quantix.agent.0\n"; err != nil || q != want {
		t.Errorf("QEMU: %q, %v; want %q", q, err, want)
	}
	x, err := qtx.ChannelWiring("/run/vm1.sock", "", false, qtx.WiringLibvirt)
	if want := "<channel type='unix'>\n  <source mode='bind' path='/run/vm1.sock'/>\n" +
		"  <target type='virtio' name='org.quantix.agent.0'/>\n</channel>\n"; err != nil || x != want {
		t.Errorf("libvirt: %q, %v; want %q", x, err, want)
	}
	l, err := qtx.ChannelWiring("/run/vm1.sock", "org.example.1", true, qtx.WiringQEMU)
	if err != nil || !strings.Contains(l, "reconnect=1") || !strings.Contains(l, "name=org.example.1") ||
		strings.Contains(l, "server=on") {
		t.Errorf("host listens: %q, %v", l, err)
	}
	_, err = qtx.ChannelWiring("/run/vm1.sock", "", false, 9)
	expectKind(t, err, qtx.ErrInvalidArgument)
	_, err = qtx.ChannelWiring("relative.sock", "", false, qtx.WiringQEMU)
	expectKind(t, err, qtx.ErrInvalidArgument)
}

func TestCreateOverlay(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed")
	}
	dir := t.TempDir()
	backing := filepath.Join(dir, "backing.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", backing, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	out := filepath.Join(dir, "disk.qcow2")
	first, err := qtx.CreateOverlay(backing, out, 0, false) // 0: the backing file's size
	if want := "qemu-img create -q -f qcow2 -b " + backing + " -F qcow2 " + out; err != nil || !first.Created || first.Command != want {
		t.Fatalf("first: %+v, %v; want command %q", first, err, want)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	if again, err := qtx.CreateOverlay(backing, out, 0, false); err != nil || again.Created {
		t.Errorf("the same overlay again: %+v, %v", again, err)
	}
	_, err = qtx.CreateOverlay(backing, out, 32<<20, false) // a different one is there
	expectKind(t, err, qtx.ErrAlreadyExists)
	grown, err := qtx.CreateOverlay(backing, out, 32<<20, true)
	if err != nil || !grown.Created || !strings.HasSuffix(grown.Command, " "+out+" 33554432") {
		t.Errorf("overwrite: %+v, %v", grown, err)
	}
	_, err = qtx.CreateOverlay(backing, filepath.Join(dir, "small.qcow2"), 8<<20, false) // smaller than the image
	expectKind(t, err, qtx.ErrInvalidArgument)
	_, err = qtx.CreateOverlay(filepath.Join(dir, "none.qcow2"), filepath.Join(dir, "o.qcow2"), 0, false)
	expectKind(t, err, qtx.ErrNotFound)
}

func TestWaitReadyAgainstNothing(t *testing.T) {
	seen, err := qtx.WaitReady(filepath.Join(t.TempDir(), "agent.sock"), 200*time.Millisecond)
	e := expectKind(t, err, qtx.ErrTimeout)
	if seen != qtx.SeenSocketAbsent || seen.String() != "socket_absent" || !strings.Contains(e.Message, "socket_absent") {
		t.Errorf("seen %v, message %q", seen, e.Message)
	}
}

func TestWaitReadyAgainstAnAgent(t *testing.T) {
	p := startAgent(t, testConfig)
	seen, err := qtx.WaitReady(p.socket, 20*time.Second)
	if err != nil || seen != qtx.SeenReady {
		t.Fatalf("WaitReady: %v, %v", seen, err)
	}
}

// The seed's C copy and the returned strings are freed, also when the
// library refuses the seed.
func TestProvisioningHelpersFreeTheirCMemory(t *testing.T) {
	bad := fullSeed()
	bad.Gateway4 = "198.51.100.1"
	round := func() {
		if _, err := qtx.RenderSeed(fullSeed()); err != nil {
			t.Fatal(err)
		}
		if _, err := qtx.RenderSeed(bad); err == nil {
			t.Fatal("a bad seed was rendered")
		}
		if _, err := qtx.ChannelWiring("/run/vm1.sock", "org.example.1", false, qtx.WiringLibvirt); err != nil {
			t.Fatal(err)
		}
		if _, err := qtx.ParseSize("20Q"); err == nil {
			t.Fatal("20Q parsed")
		}
	}
	round() // the library's one-time allocations
	heap := qtx.CHeapInUse()
	for i := 0; i < 2000; i++ {
		round()
	}
	grown := int64(qtx.CHeapInUse()) - int64(heap)
	t.Logf("C heap in use: %d bytes before, %+d after 2,000 rounds", heap, grown)
	if grown > 64<<10 { // a leak of one seed's copy per round would be megabytes
		t.Fatalf("the C heap grew by %d bytes over 2,000 rounds", grown)
	}
}
