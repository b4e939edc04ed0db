package qtx_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// The quickstart example (examples/go/quickstart) against a real agent.
func TestQuickstartExample(t *testing.T) {
	p := startAgent(t, "")
	bin := filepath.Join(t.TempDir(), "quickstart")
	// -race: the standard library is compiled for it already (go test -race).
	build := exec.Command("go", "build", "-race", "-o", bin, "./quickstart")
	// Found from this file's path, whatever the working directory.
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller: no file name")
	}
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..", "examples", "go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, p.socket).CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
	host, _ := os.Hostname()
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	text := string(out)
	for _, want := range []string{
		"hostname: " + host + "\n",
		"kernel: " + utsString(uts.Release[:]) + "\n",
		"stdout: out\n",
		"stderr: err\n",
		"exit code: 0\n",
		"upload and download: 1500 bytes, sha256 ",
		", identical\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "\ntelemetry "); n != 3 {
		t.Errorf("%d telemetry lines, want 3:\n%s", n, text)
	}
}
