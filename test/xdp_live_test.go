package test

import (
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/netns"
)

func TestMain(m *testing.M) { netns.Main(m) }

var (
	vtep       = netip.MustParseAddr("10.10.10.10")
	routerMAC  = mac("44:38:39:22:dd:06")
	leaf01     = netip.MustParseAddr("10.10.10.1")
	leaf01MAC  = mac("44:38:39:22:dd:01")
	leaf01Port = mac("02:00:00:01:00:02") // leaf01's underlay port
	redMAC     = mac("02:00:00:00:10:10")
	greenMAC   = mac("02:00:00:00:20:10")
)

const (
	red, green dataplane.VRFID = 1, 2
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// liveLeaf is a border leaf in the test's own namespace, with real hosts
// in namespaces of their own and leaf01 as a kernel VXLAN VTEP (RED, VNI
// 4001), wired with veths. XDP forwards everything between them.
type liveLeaf struct {
	dp             *dataplane.Dataplane
	redNS, greenNS string
	leaf01NS       string
	swp10, swp20   *net.Interface
}

func newLiveLeaf(t *testing.T) *liveLeaf {
	netns.Root(t)
	l := &liveLeaf{redNS: netns.New(t, "red"), greenNS: netns.New(t, "green"), leaf01NS: netns.New(t, "leaf01")}
	ip := func(args ...string) { netns.IP(t, args...) }

	ip("link", "set", "lo", "up")
	ip("addr", "add", vtep.String()+"/32", "dev", "lo")
	t.Cleanup(func() { ip("addr", "del", vtep.String()+"/32", "dev", "lo") })
	netns.Sysctl(t, "net.ipv4.conf.all.forwarding", "1") // the FIB helper asks for it; access ports turn it off

	// Hosts: RED 192.168.100.10 on swp10, GREEN 192.168.200.10 on swp20.
	for _, h := range []struct {
		port, ns string
		hostMAC  net.HardwareAddr
		addr, gw string
	}{
		{"swp10", l.redNS, redMAC, "192.168.100.10/24", "192.168.100.1/24"},
		{"swp20", l.greenNS, greenMAC, "192.168.200.10/24", "192.168.200.1/24"},
	} {
		netns.Veth(t, netns.Dev{Name: h.port}, netns.Dev{NS: h.ns, Name: "eth0", MAC: h.hostMAC})
		ip("addr", "add", h.gw, "dev", h.port)
		ip("link", "set", h.port, "up")
		ip("-n", h.ns, "addr", "add", h.addr, "dev", "eth0")
		ip("-n", h.ns, "link", "set", "eth0", "up")
		ip("-n", h.ns, "route", "add", "default", "via", strings.Split(h.gw, "/")[0])
	}

	// leaf01: underlay on swp1, a kernel VXLAN device for RED whose MAC is
	// leaf01's router MAC, and 192.168.1.10 on it; symmetric IRB back to us.
	netns.Veth(t, netns.Dev{Name: "swp1"}, netns.Dev{NS: l.leaf01NS, Name: "eth0", MAC: leaf01Port})
	ip("addr", "add", "169.254.1.1/30", "dev", "swp1")
	ip("link", "set", "swp1", "up")
	ip("route", "add", leaf01.String()+"/32", "via", "169.254.1.2")
	ip("neigh", "replace", "169.254.1.2", "lladdr", leaf01Port.String(), "dev", "swp1", "nud", "permanent")
	n := func(args ...string) { ip(append([]string{"-n", l.leaf01NS}, args...)...) }
	n("addr", "add", leaf01.String()+"/32", "dev", "lo")
	n("addr", "add", "169.254.1.2/30", "dev", "eth0")
	n("link", "set", "eth0", "up")
	n("route", "add", vtep.String()+"/32", "via", "169.254.1.1")
	netns.Link(t, netns.Dev{NS: l.leaf01NS, Name: "vx4001", MAC: leaf01MAC}, "vxlan", "id", "4001", "local", leaf01.String(), "dstport", "4789", "nolearning")
	n("link", "set", "vx4001", "up")
	n("addr", "add", "192.168.1.10/32", "dev", "vx4001")
	n("neigh", "replace", vtep.String(), "lladdr", routerMAC.String(), "dev", "vx4001", "nud", "permanent")
	n("route", "add", "192.168.100.0/24", "via", vtep.String(), "dev", "vx4001", "onlink")
	n("route", "add", "192.168.200.0/24", "via", vtep.String(), "dev", "vx4001", "onlink")
	if out, err := netns.Exec(t, l.leaf01NS, "bridge", "fdb", "append", routerMAC.String(), "dev", "vx4001", "dst", vtep.String()); err != nil {
		t.Fatalf("bridge fdb: %v: %s", err, out)
	}

	// Frames XDP redirects into a veth are dropped unless its peer runs XDP.
	netns.AttachPass(t, l.redNS, "eth0")
	netns.AttachPass(t, l.greenNS, "eth0")
	netns.AttachPass(t, l.leaf01NS, "eth0")

	dp, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ifname := range []string{"swp1", "swp10", "swp20"} {
			dp.Detach(ifname)
		}
		dp.Close()
	})
	l.dp = dp
	l.swp10, _ = net.InterfaceByName("swp10")
	l.swp20, _ = net.InterfaceByName("swp20")
	remote := []dataplane.Remote{{VTEP: leaf01, VNI: 4001, RouterMAC: leaf01MAC}}
	pfx := netip.MustParsePrefix
	must(t, dp.AddVTEP(vtep))
	must(t, dp.SetVRF(dataplane.VRF{ID: red, VNI: 4001, RouterMAC: routerMAC, VTEP: vtep}))
	must(t, dp.SetVRF(dataplane.VRF{ID: green, VNI: 4002, RouterMAC: routerMAC, VTEP: vtep}))
	must(t, dp.ReplaceTable(red, []dataplane.Route{
		{Prefix: pfx("192.168.1.0/24"), Kind: dataplane.RouteRemote, Remotes: remote},
		{Prefix: pfx("192.168.100.0/24"), Kind: dataplane.RouteLocal, HostVRF: red},
		{Prefix: pfx("192.168.100.1/32"), Kind: dataplane.RouteReceive},
		{Prefix: pfx("192.168.200.0/24"), Kind: dataplane.RouteLocal, HostVRF: green}, // leaked
	}))
	must(t, dp.ReplaceTable(green, []dataplane.Route{
		{Prefix: pfx("192.168.1.0/24"), Kind: dataplane.RouteRemote, Remotes: remote}, // leaked: RED's label 4001
		{Prefix: pfx("192.168.200.0/24"), Kind: dataplane.RouteLocal, HostVRF: green},
		{Prefix: pfx("192.168.200.1/32"), Kind: dataplane.RouteReceive},
		{Prefix: pfx("192.168.100.0/24"), Kind: dataplane.RouteLocal, HostVRF: red}, // leaked
	}))
	must(t, dp.SetNeighbor(red, netip.MustParseAddr("192.168.100.10"), dataplane.Neighbor{Ifindex: l.swp10.Index, MAC: redMAC, SrcMAC: l.swp10.HardwareAddr}))
	must(t, dp.SetNeighbor(green, netip.MustParseAddr("192.168.200.10"), dataplane.Neighbor{Ifindex: l.swp20.Index, MAC: greenMAC, SrcMAC: l.swp20.HardwareAddr}))
	must(t, dp.AttachUplink("swp1"))
	must(t, dp.AttachAccess("swp10", red))
	must(t, dp.AttachAccess("swp20", green))
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kernelForwarded is the leaf kernel's count of IPv4 datagrams it routed.
func kernelForwarded(t *testing.T) int {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	names, values := strings.Fields(lines[0]), strings.Fields(lines[1])
	for i, name := range names {
		if name == "ForwDatagrams" {
			n, _ := strconv.Atoi(values[i])
			return n
		}
	}
	t.Fatal("no ForwDatagrams in /proc/net/snmp")
	return 0
}

// reply is an echo reply as ping prints it: its sequence number and TTL.
var reply = regexp.MustCompile(`icmp_seq=(\d+) ttl=(\d+)`)

// TestLiveTrafficAcrossLeakedVRFs sends real pings over veths: every
// packet is forwarded by XDP (its counters move, the kernel's do not), each
// routed hop decrements the TTL once, and ping checks the payload.
func TestLiveTrafficAcrossLeakedVRFs(t *testing.T) {
	l := newLiveLeaf(t)
	for _, tc := range []struct {
		name, from, to string
		wantTTL        int // of the echo replies
		counted        []dataplane.CounterKey
	}{
		{
			name: "RED host to GREEN host on this leaf (local leak)", from: l.redNS, to: "192.168.200.10", wantTTL: 63,
			counted: []dataplane.CounterKey{{VRF: red, Reason: dataplane.ReasonFwdLocal}, {VRF: green, Reason: dataplane.ReasonFwdLocal}},
		},
		{
			// Out: encapsulated with VNI 4001 to leaf01's kernel VXLAN;
			// back: decapsulated from VNI 4001 into RED.
			name: "RED host to RED on a kernel VXLAN VTEP", from: l.redNS, to: "192.168.1.10", wantTTL: 63,
			counted: []dataplane.CounterKey{{VRF: red, Reason: dataplane.ReasonFwdRemote}, {VRF: red, Reason: dataplane.ReasonFwdLocal}},
		},
		{
			// GREEN leaks RED's prefix with RED's label; the reply comes
			// back in RED's VNI and RED leaks GREEN's host.
			name: "GREEN host to RED on a kernel VXLAN VTEP (leaked both ways)", from: l.greenNS, to: "192.168.1.10", wantTTL: 63,
			counted: []dataplane.CounterKey{{VRF: green, Reason: dataplane.ReasonFwdRemote}, {VRF: red, Reason: dataplane.ReasonFwdLocal}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const count = 5
			before, err := l.dp.Counters()
			must(t, err)
			kernelBefore := kernelForwarded(t)
			// The first packet may wait for the host's ARP of its gateway.
			// With a deadline (-w) ping waits for count replies however
			// slow the machine is (with -c alone it stops waiting for the
			// last one after twice the longest round trip), and sends on
			// until it has them: a lost echo is a missing sequence number.
			out, err := netns.Exec(t, tc.from, "ping", "-c", strconv.Itoa(count), "-w", "30", "-i", "0.2", "-s", "200", "-p", "c0ffee", tc.to)
			if err != nil {
				t.Fatalf("ping %s: %v\n%s", tc.to, err, out)
			}
			replies := map[int]int{}
			for _, m := range reply.FindAllStringSubmatch(out, -1) {
				seq, _ := strconv.Atoi(m[1])
				replies[seq]++
				if ttl, _ := strconv.Atoi(m[2]); ttl != tc.wantTTL {
					t.Errorf("reply ttl %d, want %d (one decrement per routed hop)", ttl, tc.wantTTL)
				}
			}
			for seq := 1; seq <= count; seq++ {
				if replies[seq] != 1 {
					t.Errorf("ping %s: echo %d answered %d times, want once:\n%s", tc.to, seq, replies[seq], out)
				}
			}
			after, err := l.dp.Counters()
			must(t, err)
			for _, k := range tc.counted {
				if got := after[k].Packets - before[k].Packets; got < count {
					t.Errorf("counter %d/%v moved by %d, want at least %d", k.VRF, k.Reason, got, count)
				}
			}
			if n := kernelForwarded(t) - kernelBefore; n != 0 {
				t.Errorf("the kernel forwarded %d datagrams; XDP should have forwarded them all", n)
			}
		})
	}
}
