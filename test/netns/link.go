package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goneWithin bounds the wait for a deleted device or namespace to let go
// of its name. Deletion is synchronous in the kernel, so this is a bound
// on a poll, not a guess at how long teardown takes.
const goneWithin = 10 * time.Second

// Dev is one network device of a test topology.
type Dev struct {
	NS   string           // its namespace, a name from New; "" is the test's own
	Name string           // its name there
	MAC  net.HardwareAddr // nil: the kernel picks one
	MTU  int              // 0: the kernel's default
}

func (d Dev) String() string {
	if d.NS == "" {
		return d.Name
	}
	return d.Name + " in " + d.NS
}

// ip prefixes args with what runs them in d's namespace.
func (d Dev) ip(args ...string) []string {
	if d.NS == "" {
		return args
	}
	return append([]string{"-n", d.NS}, args...)
}

// attrs are the ip link arguments for d's address and MTU.
func (d Dev) attrs() []string {
	var a []string
	if d.MAC != nil {
		a = append(a, "address", d.MAC.String())
	}
	if d.MTU != 0 {
		a = append(a, "mtu", strconv.Itoa(d.MTU))
	}
	return a
}

// Veth creates a veth pair, a and b, each in its own namespace, and
// deletes it when the test ends. Both ends are left down.
//
// The deletion is explicit and waited for: deleting a namespace (New's
// cleanup) does not delete the veth ends outside it until the kernel gets
// round to destroying it, later, and the next test creating the same name
// would find it still there. Create the namespaces first: cleanups run in
// reverse, so the pair goes before they do.
func Veth(t testing.TB, a, b Dev) {
	t.Helper()
	if a.NS != "" && b.NS == "" {
		a, b = b, a // the peer's namespace goes by name; the test's own has none
	}
	args := append([]string{"link", "add", a.Name}, a.attrs()...)
	args = append(append(args, "type", "veth", "peer", "name", b.Name), b.attrs()...)
	if b.NS != "" {
		args = append(args, "netns", b.NS)
	}
	add(t, a.ip(args...), a, b)
}

// Link creates device d of kind (vxlan, dummy, ...) with the options args
// give ("id", "4001", "dstport", "4789"), and deletes it, as Veth does,
// when the test ends.
func Link(t testing.TB, d Dev, kind string, args ...string) {
	t.Helper()
	cmd := append([]string{"link", "add", d.Name}, d.attrs()...)
	add(t, d.ip(append(append(cmd, "type", kind), args...)...), d)
}

// add runs ip with args, which create devs (devs[0] is the one to delete:
// a veth's peer goes with it), and registers their deletion.
func add(t testing.TB, args []string, devs ...Dev) {
	t.Helper()
	IP(t, args...)
	t.Cleanup(func() {
		del := devs[0].ip("link", "del", "dev", devs[0].Name)
		out, delErr := exec.Command("ip", del...).CombinedOutput()
		for _, d := range devs {
			if err := waitGone(d); err != nil {
				t.Errorf("%v (ip %s: %v %s)", err, strings.Join(del, " "), delErr, out)
			}
		}
	})
}

// waitGone polls until d no longer exists.
func waitGone(d Dev) error {
	deadline := time.Now().Add(goneWithin)
	for exec.Command("ip", d.ip("link", "show", "dev", d.Name)...).Run() == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still exists %v after its deletion: the next test to create it would fail", d, goneWithin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// device is one entry of ip -d -j link show.
type device struct {
	Name  string   `json:"ifname"`
	Flags []string `json:"flags"`
	Info  struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func devices(ns string) ([]device, error) {
	out, err := exec.Command("ip", "-n", ns, "-d", "-j", "link", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("list devices in %s: %w", ns, err)
	}
	var ls []device
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, fmt.Errorf("list devices in %s: %w", ns, err)
	}
	return ls, nil
}

// remove deletes namespace ns so that nothing of it is left to block a
// re-creation: no device it held (a veth end elsewhere would outlive it
// until the kernel destroys the namespace, asynchronously), and not its
// name.
func remove(ns string) error {
	var errs []error
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		errs = append(errs, fmt.Errorf("namespace %s: processes %s still inside keep it alive: stop them in a cleanup registered after New",
			ns, strings.Join(strings.Fields(string(out)), ", ")))
	}
	ls, err := devices(ns)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range ls {
		if !slices.Contains(l.Flags, "LOOPBACK") {
			// Devices every namespace has (sit0, ip6tnl0 when their
			// modules are loaded) cannot be deleted; they hold no name
			// outside it.
			exec.Command("ip", "-n", ns, "link", "del", "dev", l.Name).Run()
		}
	}
	if ls, err = devices(ns); err == nil {
		for _, l := range ls {
			if l.Info.Kind == "veth" {
				errs = append(errs, fmt.Errorf("namespace %s: veth %s could not be deleted", ns, l.Name))
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		return errors.Join(append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))...)
	}
	if _, err := os.Stat("/run/netns/" + ns); !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("namespace %s: /run/netns/%s still there after ip netns del (%v)", ns, ns, err))
	}
	return errors.Join(errs...)
}
