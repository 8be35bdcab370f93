package test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/test/netns"
)

// The Debian package and make install, as an operator meets them: built
// from this tree (make deb, make install), installed on this machine, run
// as its systemd unit says, upgraded under traffic, removed.

// leafConf is a leaf with RED on swp10 and GREEN on swp20 leaking into each
// other (the guide's RT imports), and no BGP neighbour: what crosses
// between the two hosts is xleaf's XDP forwarding across leaked VRFs.
const leafConf = `nv set interface lo ip address 10.10.10.1/32
nv set interface lo type loopback
nv set interface swp10 ip vrf RED
nv set interface swp10 ip address 192.168.1.1/24
nv set interface swp20 ip vrf GREEN
nv set interface swp20 ip address 192.168.2.1/24
nv set router bgp autonomous-system 65101
nv set router bgp enable on
nv set router bgp router-id 10.10.10.1
nv set evpn enable on
nv set nve vxlan enable on
nv set vrf RED evpn enable on
nv set vrf RED evpn vni 4001
nv set vrf RED router bgp enable on
nv set vrf RED router bgp address-family ipv4-unicast enable on
nv set vrf RED router bgp address-family ipv4-unicast redistribute connected enable on
nv set vrf RED router bgp address-family ipv4-unicast route-export to-evpn enable on
nv set vrf RED router bgp route-import from-evpn route-target ANY:4002
nv set vrf GREEN evpn enable on
nv set vrf GREEN evpn vni 4002
nv set vrf GREEN router bgp enable on
nv set vrf GREEN router bgp address-family ipv4-unicast enable on
nv set vrf GREEN router bgp address-family ipv4-unicast redistribute connected enable on
nv set vrf GREEN router bgp address-family ipv4-unicast route-export to-evpn enable on
nv set vrf GREEN router bgp route-import from-evpn route-target ANY:4001
`

// repoRoot is the tree the tests build from.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// makeDeb builds the package at version into dir and returns its path.
func makeDeb(t *testing.T, version, dir string) string {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", "deb", "VERSION="+version, "DEBOUT="+dir)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("make deb said %q: %v", deb, err)
	}
	return deb
}

// machine is this machine as a package sees it, in a mount namespace of its
// own: /usr, /etc and /var are overlays on the real ones (the real dpkg
// database, the real dependencies; every write is thrown away at the end),
// /run is empty (no systemd runs here, as on a host where the package is
// installed but systemd is not PID 1), and /sys/fs/bpf is a bpf filesystem
// of its own that lives as long as the namespace, as the host's does. What
// runs in it runs in the leaf's network namespace, netns.
type machine struct {
	t      *testing.T
	holder *exec.Cmd
	pid    int
	netns  string
}

func newMachine(t *testing.T, netns string) *machine {
	t.Helper()
	scratch := t.TempDir()
	script := `set -e
mount -t tmpfs tmpfs ` + scratch + `
for d in usr etc var; do
	mkdir -p ` + scratch + `/$d/up ` + scratch + `/$d/work
	mount -t overlay overlay -o lowerdir=/$d,upperdir=` + scratch + `/$d/up,workdir=` + scratch + `/$d/work /$d
done
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
echo ready
exec sleep infinity`
	m := &machine{t: t, netns: netns, holder: exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script)}
	stdout, err := m.holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.holder.Stderr = os.Stderr
	if err := m.holder.Start(); err != nil {
		t.Fatalf("mount namespace: %v", err)
	}
	t.Cleanup(func() { m.holder.Process.Kill(); m.holder.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("mount namespace: %q %v", line, err)
	}
	m.pid = m.holder.Process.Pid
	return m
}

// cmd is a command run inside the machine.
func (m *machine) cmd(args ...string) *exec.Cmd {
	c := exec.Command("nsenter", append([]string{"--mount", "--target", fmt.Sprint(m.pid), "--net=/run/netns/" + m.netns, "--"}, args...)...)
	c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return c
}

// run runs a command inside the machine and returns its output; failing
// fails the test.
func (m *machine) run(args ...string) string {
	m.t.Helper()
	out, err := m.cmd(args...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// procs is the processes named comm inside the machine (its mount
// namespace; other tests may run xleafd elsewhere).
func (m *machine) procs(comm string) []int {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", m.pid))
	if err != nil {
		m.t.Fatal(err)
	}
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		c, _ := os.ReadFile(d + "/comm")
		n, _ := os.Readlink(d + "/ns/mnt")
		if string(c) == comm+"\n" && n == ns {
			var pid int
			fmt.Sscan(filepath.Base(d), &pid)
			out = append(out, pid)
		}
	}
	return out
}

// write puts text in the file at path inside the machine.
func (m *machine) write(path, text string) {
	m.t.Helper()
	c := m.cmd("sh", "-c", `cat > "$0"`, path)
	c.Stdin = strings.NewReader(text)
	if out, err := c.CombinedOutput(); err != nil {
		m.t.Fatalf("write %s: %v %s", path, err, out)
	}
}

// exists says whether path is there inside the machine.
func (m *machine) exists(path string) bool {
	return m.cmd("test", "-e", path).Run() == nil
}

// unit is what the installed systemd unit says about starting xleafd.
type unit struct {
	execStartPre, execStart, execReload []string
	caps                                []string // CapabilityBoundingSet, lower case, no cap_
	runtimeDir                          string
	syscalls                            []string // SystemCallFilter's allowlist
}

func (m *machine) unit(path string) unit {
	m.t.Helper()
	var u unit
	for _, line := range strings.Split(m.run("cat", path), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch key {
		case "ExecStartPre":
			u.execStartPre = strings.Fields(value)
		case "ExecStart":
			u.execStart = strings.Fields(value)
		case "ExecReload":
			u.execReload = strings.Fields(value)
		case "CapabilityBoundingSet":
			for _, c := range strings.Fields(value) {
				u.caps = append(u.caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		case "RuntimeDirectory":
			u.runtimeDir = "/run/" + value
		case "SystemCallFilter":
			u.syscalls = append(u.syscalls, strings.Fields(value)...)
		}
	}
	if u.execStart == nil || u.execReload == nil || u.caps == nil || u.runtimeDir == "" {
		m.t.Fatalf("%s: no ExecStart, ExecReload, CapabilityBoundingSet or RuntimeDirectory", path)
	}
	return u
}

// agent is xleafd started as systemd starts the unit: its runtime
// directory made, ExecStartPre run to success, then ExecStart with no
// capability outside the unit's bounding set (as root, as the unit runs
// it). Its output is the journal's.
type agent struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func (m *machine) start(u unit, log string, wrap ...string) *agent {
	m.t.Helper()
	m.run("mkdir", "-p", "-m", "0700", u.runtimeDir)
	if u.execStartPre != nil {
		m.run(u.execStartPre...)
	}
	bounding := "-all"
	for _, c := range u.caps {
		bounding += ",+" + c
	}
	args := append([]string{"setpriv", "--bounding-set=" + bounding, "--"}, wrap...)
	a := &agent{cmd: m.cmd(append(args, u.execStart...)...), done: make(chan error, 1), log: log}
	// Where its output goes, as systemd tells a service that logs to the
	// journal (device:inode of the stream; the values do not matter here).
	a.cmd.Env = append(a.cmd.Env, "JOURNAL_STREAM=0:0")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	a.cmd.Stdout, a.cmd.Stderr = f, f
	if err := a.cmd.Start(); err != nil {
		m.t.Fatalf("start xleafd: %v", err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	m.t.Cleanup(func() { a.cmd.Process.Kill() })
	return a
}

// xleafd is the agent's xleafd process: the command itself, or its
// descendant when a wrapper (strace) started it.
func (a *agent) xleafd(t *testing.T) int {
	t.Helper()
	pids := []int{a.cmd.Process.Pid}
	for len(pids) > 0 {
		pid := pids[0]
		pids = pids[1:]
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); string(comm) == "xleafd\n" {
			return pid
		}
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, c := range strings.Fields(string(children)) {
			var child int
			fmt.Sscan(c, &child)
			pids = append(pids, child)
		}
	}
	t.Fatalf("no xleafd process under pid %d", a.cmd.Process.Pid)
	return 0
}

// stop is systemd's stop: SIGTERM to xleafd, then the wait for it to exit.
func (a *agent) stop(t *testing.T) {
	t.Helper()
	if err := unix.Kill(a.xleafd(t), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.done:
		if err != nil {
			out, _ := os.ReadFile(a.log)
			t.Fatalf("xleafd exited with %v on SIGTERM; its log:\n%s", err, out)
		}
	case <-time.After(90 * time.Second): // systemd's TimeoutStopSec
		t.Fatal("xleafd did not stop within 90 s of SIGTERM")
	}
}

// waitFor polls f every 100 ms until it is true or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// udpFlow sends numbered datagrams from the RED host to the GREEN host
// at rate a second until stopped, and counts which arrived.
type udpFlow struct {
	mu         sync.Mutex
	sent       int
	got        map[uint32]bool
	stop, done chan struct{}
}

func startFlow(t *testing.T, redNS, greenNS string, rate int) *udpFlow {
	t.Helper()
	f := &udpFlow{got: map[uint32]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	var rx, tx *net.UDPConn
	netns.Do(t, greenNS, func() {
		var err error
		if rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("192.168.2.10"), Port: 9000}); err != nil {
			t.Fatal(err)
		}
	})
	netns.Do(t, redNS, func() {
		var err error
		if tx, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP("192.168.2.10"), Port: 9000}); err != nil {
			t.Fatal(err)
		}
		// No UDP checksum: a veth leaves it to an offload XDP does not do.
		raw, err := tx.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
		if err != nil {
			t.Fatal(err)
		}
	})
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := rx.Read(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				f.mu.Lock()
				f.got[binary.BigEndian.Uint32(buf)] = true
				f.mu.Unlock()
			}
		}
	}()
	go func() {
		defer close(f.done)
		defer tx.Close()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		buf := make([]byte, 32)
		for seq := uint32(0); ; seq++ {
			select {
			case <-f.stop:
				time.Sleep(200 * time.Millisecond) // the last ones in flight
				rx.Close()
				return
			case <-tick.C:
			}
			binary.BigEndian.PutUint32(buf, seq)
			if _, err := tx.Write(buf); err == nil {
				f.mu.Lock()
				f.sent = int(seq) + 1
				f.mu.Unlock()
			}
		}
	}()
	return f
}

// end stops the flow and returns how many were sent and how many lost.
func (f *udpFlow) end() (sent, lost int) {
	close(f.stop)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	for seq := range f.sent {
		if !f.got[uint32(seq)] {
			lost++
		}
	}
	return f.sent, lost
}

// xdpAttached says whether an XDP program is on dev in namespace ns.
func xdpAttached(t *testing.T, ns, dev string) bool {
	t.Helper()
	var attached bool
	netns.Do(t, ns, func() {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		attached = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
	})
	return attached
}

// TestDebianPackage: make deb's package installs on this machine with
// dpkg, enabled and not started; xleafd runs as its unit says (the
// unit's capabilities and no more, every system call inside the unit's
// filter) and forwards across leaked VRFs; an upgrade to a rebuilt package
// under a steady flow, restarted as systemd's try-restart does, loses
// nothing; removal takes the data path out of the kernel, purge the
// configuration.
func TestDebianPackage(t *testing.T) {
	netns.Root(t)
	for _, tool := range []string{"dpkg", "dpkg-deb", "unshare", "nsenter", "setpriv", "strace", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (.ci/deps installs it)", tool, err)
		}
	}
	debs := t.TempDir()
	v1, err := exec.Command(filepath.Join(repoRoot(t), "dist", "version")).Output()
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(v1))
	upgrade := version + "+upgrade" // a later version of the same tree
	deb1, deb2 := makeDeb(t, version, debs), makeDeb(t, upgrade, debs)

	// The leaf in a namespace of its own (xleafd puts addresses and
	// routes there), a host on each of its ports.
	leafNS, redNS, greenNS := netns.New(t, "pkgleaf"), netns.New(t, "pkgred"), netns.New(t, "pkggreen")
	for _, h := range []struct{ ns, port, addr, gw string }{
		{redNS, "swp10", "192.168.1.10/24", "192.168.1.1"},
		{greenNS, "swp20", "192.168.2.10/24", "192.168.2.1"},
	} {
		netns.Veth(t, netns.Dev{NS: leafNS, Name: h.port}, netns.Dev{NS: h.ns, Name: "eth0"})
		netns.IP(t, "-n", leafNS, "link", "set", h.port, "up")
		netns.IP(t, "-n", h.ns, "addr", "add", h.addr, "dev", "eth0")
		netns.IP(t, "-n", h.ns, "link", "set", "eth0", "up")
		netns.IP(t, "-n", h.ns, "route", "add", "default", "via", h.gw)
		netns.AttachPass(t, h.ns, "eth0") // a veth takes XDP-redirected frames only with NAPI on
	}

	m := newMachine(t, leafNS)
	if m.exists("/usr/bin/xleafd") {
		t.Fatal("xleafd already installed on this machine: the test would not install it")
	}
	m.run("dpkg", "-i", deb1)
	if got := m.run("dpkg-query", "-W", "-f=${Status} ${Version}", "xleaf"); got != "install ok installed "+version {
		t.Fatalf("dpkg-query: %q", got)
	}
	for _, f := range []string{"/usr/bin/xleafd", "/usr/bin/xleafctl", "/lib/systemd/system/xleafd.service", "/etc/xleaf/xleaf.conf",
		"/usr/share/bash-completion/completions/xleafctl", "/usr/share/doc/xleaf/README.md", "/usr/share/doc/xleaf/examples/xleaf.conf"} {
		if !m.exists(f) {
			t.Errorf("installed: %s missing", f)
		}
	}
	// Enabled, not started.
	if !m.exists("/etc/systemd/system/multi-user.target.wants/xleafd.service") {
		t.Error("the unit is not enabled")
	}
	if pids := m.procs("xleafd"); len(pids) > 0 {
		t.Errorf("xleafd started by the install: pids %v", pids)
	}
	if got := m.run("/usr/bin/xleafd", "--version"); got != "xleafd "+version+"\n" {
		t.Errorf("xleafd --version = %q", got)
	}
	if out := m.run("systemd-analyze", "verify", "/lib/systemd/system/xleafd.service"); out != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	// As shipped, the configuration is all comments: valid, and empty.
	if out := m.run("/usr/bin/xleafd", "--check-config", "/etc/xleaf/xleaf.conf"); !strings.Contains(out, "ok: 0 VRFs, 0 BGP neighbours") {
		t.Errorf("the shipped configuration: %s", out)
	}

	// The operator writes the configuration and starts the unit; the
	// first run is traced to check the unit's system call filter.
	m.write("/etc/xleaf/xleaf.conf", leafConf)
	u := m.unit("/lib/systemd/system/xleafd.service")
	logs := t.TempDir()
	trace := filepath.Join(logs, "strace")
	a := m.start(u, filepath.Join(logs, "xleafd.log"), "strace", "-f", "-qq", "-o", trace)
	ctl := func(args ...string) (string, error) {
		out, err := m.cmd(append([]string{"/usr/bin/xleafctl"}, args...)...).CombinedOutput()
		return string(out), err
	}
	// ping: whether any of three echo requests is answered (ping exits 0).
	ping := func() bool {
		_, err := netns.Exec(t, redNS, "ping", "-c", "3", "-i", "0.2", "-W", "1", "192.168.2.10")
		return err == nil
	}
	waitFor(t, "xleafd answers xleafctl", 20*time.Second, func() bool { _, err := ctl("show", "version"); return err == nil })
	waitFor(t, "RED reaches GREEN across the leak", 20*time.Second, ping)
	if out, err := ctl("show", "route", "vrf", "RED"); err != nil || !strings.Contains(out, "192.168.2.0/24 is directly connected, swp20 (vrf GREEN)") {
		t.Errorf("show route vrf RED: %v\n%s", err, out)
	}
	if out, err := ctl("verify"); err != nil || !strings.Contains(out, "no differences") {
		t.Errorf("verify: %v\n%s", err, out)
	}
	// systemctl reload: the unit's ExecReload. A bad line fails it, saying
	// why, and xleafd runs on with the configuration it had.
	reload := func() (string, error) {
		out, err := m.cmd(u.execReload...).CombinedOutput()
		return string(out), err
	}
	if out, err := reload(); err != nil {
		t.Errorf("reload: %v %s", err, out)
	}
	m.run("sh", "-c", "echo 'nv set vrf RED evpn vni banana' >> /etc/xleaf/xleaf.conf")
	if out, err := reload(); err == nil || !strings.Contains(out, "configuration rejected") {
		t.Errorf("reload of a bad configuration: %v %q, want it refused", err, out)
	}
	if !ping() {
		t.Error("RED no longer reaches GREEN after a refused reload")
	}
	m.write("/etc/xleaf/xleaf.conf", leafConf)
	a.stop(t)
	checkSyscalls(t, m, u, trace)
	// Journal lines: the journal stamps them, xleafd does not.
	if out, err := os.ReadFile(a.log); err != nil || !strings.Contains(string(out), "level=INFO msg=\"xleafd running\"") ||
		strings.Contains(string(out), "time=") {
		t.Errorf("xleafd's log under systemd (JOURNAL_STREAM set) should be key=value lines without time=: %v\n%s", err, out)
	}

	// Running, then upgraded under a flow: dpkg -i, then what postinst asks
	// of systemd (try-restart: it runs) done here: stop, start the new.
	a = m.start(u, filepath.Join(logs, "xleafd.log"))
	waitFor(t, "xleafd answers after a restart", 20*time.Second, func() bool { _, err := ctl("show", "version"); return err == nil })
	waitFor(t, "RED reaches GREEN", 20*time.Second, ping)
	flow := startFlow(t, redNS, greenNS, 1000)
	time.Sleep(time.Second)
	m.run("dpkg", "-i", deb2)
	if got := m.run("/usr/bin/xleafd", "--version"); got != "xleafd "+upgrade+"\n" {
		t.Errorf("after the upgrade, xleafd --version = %q", got)
	}
	restarted := time.Now()
	a.stop(t)
	u = m.unit("/lib/systemd/system/xleafd.service")
	a = m.start(u, filepath.Join(logs, "xleafd.log"))
	waitFor(t, "the upgraded xleafd answers", 30*time.Second, func() bool {
		out, err := ctl("show", "version")
		return err == nil && strings.HasPrefix(out, "xleafd "+upgrade+",")
	})
	agentDown := time.Since(restarted)
	time.Sleep(2 * time.Second)
	sent, lost := flow.end()
	t.Logf("upgrade %s -> %s under 1000 datagrams/s: %d of %d lost; the agent answered again after %v",
		version, upgrade, lost, sent, agentDown.Round(time.Millisecond))
	if lost != 0 || sent < 2000 {
		t.Errorf("upgrade under traffic: %d of %d datagrams lost, want 0 of at least 2000", lost, sent)
	}

	// Removal: stopped (prerm asks systemd), then the data path is taken
	// out: no XDP program on the ports, no pinned maps. The configuration
	// stays until a purge.
	a.stop(t)
	if !xdpAttached(t, leafNS, "swp10") {
		t.Fatal("stopped xleafd took XDP off swp10: the data path must outlive it")
	}
	m.run("dpkg", "-r", "xleaf")
	for _, dev := range []string{"swp10", "swp20"} {
		if xdpAttached(t, leafNS, dev) {
			t.Errorf("removed: XDP still on %s", dev)
		}
	}
	if m.exists("/sys/fs/bpf/xleaf") {
		t.Error("removed: pinned maps still under /sys/fs/bpf/xleaf")
	}
	// The flow crossed in XDP alone: with xleaf gone nothing routes RED to
	// GREEN (the ports do not forward in the kernel).
	if ping() {
		t.Error("removed: RED still reaches GREEN")
	}
	if m.exists("/usr/bin/xleafd") || m.exists("/lib/systemd/system/xleafd.service") {
		t.Error("removed: binaries or unit still there")
	}
	if !m.exists("/etc/xleaf/xleaf.conf") {
		t.Error("removed: the configuration went with the package (only a purge should take it)")
	}
	m.run("dpkg", "--purge", "xleaf")
	if m.exists("/etc/xleaf") || m.exists("/etc/systemd/system/multi-user.target.wants/xleafd.service") {
		t.Error("purged: /etc/xleaf or the unit's enablement still there")
	}
}

// checkSyscalls holds the system calls xleafd made under strace (a start,
// xleafctl's commands, a reload, forwarding, a stop) to the unit's
// SystemCallFilter, as systemd-analyze expands its groups.
func checkSyscalls(t *testing.T, m *machine, u unit, trace string) {
	t.Helper()
	if len(u.syscalls) == 0 {
		t.Fatal("the unit has no SystemCallFilter")
	}
	groups := map[string][]string{}
	var group string
	for _, line := range strings.Split(m.run("systemd-analyze", "syscall-filter"), "\n") {
		switch {
		case strings.HasPrefix(line, "@"):
			group = strings.TrimSpace(line)
		case strings.HasPrefix(line, "    ") && !strings.HasPrefix(strings.TrimSpace(line), "#"):
			groups[group] = append(groups[group], strings.TrimSpace(line))
		}
	}
	allowed := map[string]bool{}
	var expand func(string)
	expand = func(name string) {
		if !strings.HasPrefix(name, "@") {
			allowed[name] = true
			return
		}
		for _, n := range groups[name] {
			expand(n)
		}
	}
	for _, s := range u.syscalls {
		expand(s)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if name, _, ok := strings.Cut(f[1], "("); ok && name != "" && !strings.HasPrefix(name, "+++") && !strings.HasPrefix(name, "---") {
			used[name] = true
		}
	}
	if len(used) < 20 {
		t.Fatalf("strace saw %d system calls: did it trace xleafd?", len(used))
	}
	var outside []string
	for s := range used {
		if !allowed[s] {
			outside = append(outside, s)
		}
	}
	slices.Sort(outside)
	if len(outside) > 0 {
		t.Errorf("xleafd made system calls outside the unit's SystemCallFilter %v: %v", u.syscalls, outside)
	}
}

// TestMakeInstall: make install puts the binaries, the unit (pointing at
// them), the completion, the README and the example under DESTDIR and
// PREFIX; it never replaces a configuration that is there; make uninstall
// takes back all but the configuration.
func TestMakeInstall(t *testing.T) {
	netns.Root(t) // make deb's and install's go build: the same toolchain as the root tests
	dest := t.TempDir()
	mk := func(target string) string {
		cmd := exec.Command("make", "--no-print-directory", target, "DESTDIR="+dest, "PREFIX=/opt/xleaf")
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
		return string(out)
	}
	mk("install")
	files := []string{"/opt/xleaf/bin/xleafd", "/opt/xleaf/bin/xleafctl", "/opt/xleaf/lib/systemd/system/xleafd.service",
		"/opt/xleaf/share/bash-completion/completions/xleafctl", "/opt/xleaf/share/doc/xleaf/README.md",
		"/opt/xleaf/share/doc/xleaf/examples/xleaf.conf", "/etc/xleaf/xleaf.conf"}
	for _, f := range files {
		if _, err := os.Stat(dest + f); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
	unitText, err := os.ReadFile(dest + "/opt/xleaf/lib/systemd/system/xleafd.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unitText), "ExecStart=/opt/xleaf/bin/xleafd --config /etc/xleaf/xleaf.conf") || strings.Contains(string(unitText), "@BINDIR@") || strings.Contains(string(unitText), "@DOCDIR@") {
		t.Errorf("installed unit does not point at the installed xleafd:\n%s", unitText)
	}
	if out, err := exec.Command("bash", "-n", dest+"/opt/xleaf/share/bash-completion/completions/xleafctl").CombinedOutput(); err != nil {
		t.Errorf("bash completion: %v %s", err, out)
	}
	mine := []byte("# the operator's\n")
	if err := os.WriteFile(dest+"/etc/xleaf/xleaf.conf", mine, 0o644); err != nil {
		t.Fatal(err)
	}
	mk("install")
	if got, _ := os.ReadFile(dest + "/etc/xleaf/xleaf.conf"); string(got) != string(mine) {
		t.Errorf("a second make install replaced the configuration: %q", got)
	}
	mk("uninstall")
	for _, f := range files[:len(files)-1] {
		if _, err := os.Stat(dest + f); err == nil {
			t.Errorf("make uninstall left %s", f)
		}
	}
	if _, err := os.Stat(dest + "/etc/xleaf/xleaf.conf"); err != nil {
		t.Errorf("make uninstall took the configuration: %v", err)
	}
}
