package qtx_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qtx.dev/qtx"
)

// TestVM boots the test guest (build/vm, QTX_VM_DIR) in QEMU under TCG and
// drives its agent over virtio-serial: info, exec, upload and download.
// CTest runs it with label vm (go_binding_vm).
func TestVM(t *testing.T) {
	dir := os.Getenv("QTX_VM_DIR")
	if dir == "" {
		t.Skip("QTX_VM_DIR is not set (the vm label's CTest entry sets it)")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found")
	}
	work, err := os.MkdirTemp("", "qtxgo-vm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	sock := filepath.Join(work, "qtx.sock")
	console, err := os.Create(filepath.Join(work, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	vm := exec.Command(qemu, "-m", "256", "-nographic",
		"-kernel", filepath.Join(dir, "vmlinuz"), "-initrd", filepath.Join(dir, "initramfs.cpio.gz"),
		"-append", "console=ttyS0 quiet panic=-1",
		"-monitor", "none",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=qtx0,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,bus=vser0.0,chardev=qtx0,name=org.quantix.agent.0")
	vm.Stdout, vm.Stderr = console, console
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = vm.Process.Kill()
		_ = vm.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(console.Name())
			t.Logf("console:\n%s", log)
		}
	}()
	// QEMU creates the socket soon after starting; the library retries
	// until it is there.
	m, err := qtx.NewManager()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, err := m.AddAgent(qtx.AgentOptions{SocketPath: sock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.WaitReady(ctx); err != nil {
		t.Fatalf("the guest's agent: %v", err)
	}
	t.Logf("ready after %v", time.Since(start).Round(time.Millisecond))
	info, err := a.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.KernelRelease == "" || info.Arch != "x86_64" {
		t.Fatalf("info %s", info.Raw)
	}
	out, err := a.Command("/bin/sh", "-c", "echo in the guest; uname -r").Output(ctx)
	if err != nil || string(out) != "in the guest\n"+info.KernelRelease+"\n" {
		t.Fatalf("%q %v", out, err)
	}
	data := bytes.Repeat([]byte("vm bytes "), 10000)
	if _, err := a.Upload(ctx, bytes.NewReader(data), "/tmp/qtxgo.bin", nil); err != nil {
		t.Fatal(err)
	}
	var back bytes.Buffer
	if _, err := a.Download(ctx, "/tmp/qtxgo.bin", &back, nil); err != nil || !bytes.Equal(back.Bytes(), data) {
		t.Fatalf("download: %v (%d bytes)", err, back.Len())
	}
	if !strings.Contains(string(info.Raw), "kernel_release") {
		t.Fatalf("raw info %s", info.Raw)
	}
}
