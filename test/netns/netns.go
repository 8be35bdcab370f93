// Package netns runs a test binary inside a network namespace of its own, so
// every interface, route and neighbour a test creates vanishes with it, even
// when the test crashes.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	envInside = "XLEAF_TEST_NETNS"
	envWorker = "XLEAF_TEST_NETNS_WORKER"
)

// isFuzzWorker: `go test -fuzz` runs workers as children of the
// coordinator, which would put them all in its namespace, where its own
// test topology already stands.
func isFuzzWorker() bool {
	return slices.ContainsFunc(os.Args[1:], func(a string) bool {
		a = strings.TrimLeft(a, "-")
		return a == "test.fuzzworker" || a == "test.fuzzworker=true"
	})
}

// ownNamespace moves this process into a new network namespace: unshare
// on this thread, then exec the same binary, which keeps the thread's
// namespace, the pid and the pipes a fuzz worker talks to its coordinator
// over.
func ownNamespace() {
	self, err := os.Executable()
	if err == nil {
		runtime.LockOSThread()
		if err = unix.Unshare(unix.CLONE_NEWNET); err == nil {
			err = syscall.Exec(self, os.Args, append(os.Environ(), envWorker+"=1"))
		}
	}
	fmt.Fprintln(os.Stderr, "netns: move to a network namespace of its own:", err)
	os.Exit(2)
}

// PinPrefix starts the bpffs pin paths tests use; the bpf filesystem is not
// per namespace, so Main removes what crashed runs left behind.
const PinPrefix = "/sys/fs/bpf/xleaf-test-"

// Main re-executes the test binary in a fresh network namespace (as root)
// and exits with its status. Without root the tests run here and those that
// need root skip, saying so.
func Main(m *testing.M) {
	if os.Getenv(envInside) != "" && isFuzzWorker() && os.Getenv(envWorker) == "" {
		ownNamespace()
	}
	if os.Getenv(envInside) != "" || os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	removeStalePins()
	removeStaleNamespaces()
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns: find test binary:", err)
		os.Exit(2)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInside+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "netns: run tests in a new network namespace:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// Root skips t unless it runs as root inside the test namespace.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, XDP, network namespaces): run 'make test' as root; CI does")
	}
	if os.Getenv(envInside) == "" {
		t.Fatal("root test outside its network namespace: the package's TestMain must call netns.Main")
	}
}

// PinPath returns a fresh pin path for one test, removed when it ends.
func PinPath(t testing.TB) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
			t.Fatalf("mount bpf filesystem on /sys/fs/bpf: %v", err)
		}
	}
	dir, err := os.MkdirTemp("/sys/fs/bpf", filepath.Base(PinPrefix)+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		t.Fatalf("create pin path: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func removeStalePins() {
	matches, _ := filepath.Glob(PinPrefix + "*")
	for _, dir := range matches {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(dir, PinPrefix), "-", 2)[0])
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			os.RemoveAll(dir)
		}
	}
}

// NamePrefix starts the names of the namespaces tests create, so a later
// run can remove what a crashed one left.
const NamePrefix = "xlt-"

// New creates a named network namespace for one test (a host, a remote
// leaf), deleted when the test ends. Its name carries our pid. The
// deletion is complete when the test's cleanups return: the devices it
// held (and the veth ends they pair with) are gone, and so is its name,
// so the next test may create the same ones.
func New(t testing.TB, name string) string {
	t.Helper()
	full := fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), name)
	IP(t, "netns", "add", full)
	t.Cleanup(func() {
		if err := remove(full); err != nil {
			t.Error(err)
		}
	})
	IP(t, "-n", full, "link", "set", "lo", "up")
	return full
}

// Exec runs a command inside namespace ns and returns its output.
func Exec(t testing.TB, ns string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

func removeStaleNamespaces() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), NamePrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

// IP runs the ip command, failing t with its output on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Sysctl writes a value under /proc/sys.
func Sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatalf("sysctl %s=%s: %v", key, value, err)
	}
}
