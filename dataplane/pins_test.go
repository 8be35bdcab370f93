package dataplane_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/netns"
)

// envPinChild makes the test binary Open a data path and report, as
// xleafd would in the mount namespace it was started in.
const envPinChild = "XLEAF_TEST_PIN_CHILD"

// TestPinsRefusedWhereTheyWouldDie: in a mount namespace of its own whose
// mounts do not propagate (what 'ip netns exec' and 'unshare -m' give), a
// bpf filesystem Open mounted would vanish with the process and take the
// pinned tables with it; Open refuses, saying what to do. In the host's
// namespace it mounts one, as a leaf's boot would, and it stays.
func TestPinsRefusedWhereTheyWouldDie(t *testing.T) {
	if dir := os.Getenv(envPinChild); dir != "" {
		dp, err := dataplane.Open(dataplane.Options{PinPath: filepath.Join(dir, "xleaf"), RoutesPerVRF: 16})
		if err != nil {
			t.Fatal(err)
		}
		dp.Close()
		return
	}
	netns.Root(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	child := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], append(args[1:], self, "-test.run", "^TestPinsRefusedWhereTheyWouldDie$", "-test.v")...)
		cmd.Env = append(os.Environ(), envPinChild+"="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := child("unshare", "--mount", "--propagation", "private")
	if err == nil {
		t.Fatalf("Open mounted a bpf filesystem in a private mount namespace:\n%s", out)
	}
	if !strings.Contains(out, dataplane.ErrPinsWouldDie.Error()) || !strings.Contains(out, "mount -t bpf bpf "+dir) {
		t.Fatalf("refusal does not say why and what to do:\n%s", out)
	}
	if isBPFFS(dir) {
		t.Fatal("the refused mount is on the host")
	}

	// The host's namespace: the mount stays after the process.
	if out, err := child("env"); err != nil {
		t.Fatalf("Open in the host's mount namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if !isBPFFS(dir) {
		t.Fatal("no bpf filesystem left on the host after the process ended")
	}
	if _, err := os.Stat(filepath.Join(dir, "xleaf")); err != nil {
		t.Fatalf("the pins did not outlive the process: %v", err)
	}

	// Under that host mount, a private namespace finds it and pins there.
	if out, err := child("unshare", "--mount", "--propagation", "private"); err != nil {
		t.Fatalf("Open under a bpf filesystem mounted from the host: %v\n%s", err, out)
	}
}

func isBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// TestUpgradeRenewsOldCounters: counters pinned by an earlier build with
// fewer counter slots (a reason short) do not stop Open; they start again
// in the new layout, and the other pinned state is kept.
func TestUpgradeRenewsOldCounters(t *testing.T) {
	netns.Root(t)
	pin := netns.PinPath(t)
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "stats", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16,
		MaxEntries: dataplane.MaxVRFs * 19})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(pin, "stats")); err != nil {
		t.Fatal(err)
	}
	dp, err := dataplane.Open(dataplane.Options{PinPath: pin, RoutesPerVRF: 16})
	if err != nil {
		t.Fatalf("open over an earlier build's counters: %v", err)
	}
	defer dp.Close()
	now, err := ebpf.LoadPinnedMap(filepath.Join(pin, "stats"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if got, want := now.MaxEntries(), uint32(dataplane.StatsSlots); got != want {
		t.Errorf("pinned counters have %d entries, want %d", got, want)
	}
	if _, err := dataplane.ReadCounters(pin); err != nil {
		t.Errorf("read the renewed counters: %v", err)
	}
}
