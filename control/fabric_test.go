package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/netns"
)

// fabricSpec configures the fabric peer process.
type fabricSpec struct {
	ASN      uint32
	RouterID netip.Addr
	Port     string // unnumbered session on this interface
	IPv4     []netip.Prefix
	Type5    []bgp.Type5
}

// heard is one route the fabric peer received, as it reports it.
type heard struct {
	Prefix   netip.Prefix
	NextHop  netip.Addr
	Type2    bool
	VNI      uint32
	Withdraw bool
	Underlay bool
}

const envFabric = "XLEAF_TEST_FABRIC"

// TestHelperFabric is not a test: it is the fabric peer that startFabric
// runs as a separate process in its own network namespace (a speaker in
// this process would share the leaf's namespace). It reports what it hears
// as JSON lines and stops when its stdin closes.
func TestHelperFabric(t *testing.T) {
	spec := os.Getenv(envFabric)
	if spec == "" {
		return // only as a helper process
	}
	var fs fabricSpec
	if err := json.Unmarshal([]byte(spec), &fs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sp := bgp.New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err := sp.Start(ctx, bgp.Global{ASN: fs.ASN, RouterID: fs.RouterID, ListenPort: 179}); err != nil {
		t.Fatal(err)
	}
	ll, err := linkLocalPeer(ctx, fs.Port)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.AddPeer(ctx, bgp.Peer{Address: ll, Interface: fs.Port, IPv4: true, EVPN: true, ConnectRetry: 1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range fs.IPv4 {
		if err := sp.AdvertiseIPv4(ctx, p, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range fs.Type5 {
		if err := sp.Advertise(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	out := json.NewEncoder(os.Stdout)
	err = sp.Watch(ctx, func(e bgp.Event) {
		h := heard{Withdraw: e.Withdraw}
		if u := e.Underlay; u != nil {
			h.Prefix, h.NextHop, h.Underlay = u.Prefix, u.NextHop, true
		} else {
			h.Prefix, h.NextHop, h.Type2, h.VNI = e.Route.Prefix, e.Route.VTEP, e.Route.Type2, e.Route.VNI
		}
		out.Encode(h)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(os.Stdin).ReadString(0) // until the test closes our stdin
	sp.Stop(false)
}

// linkLocalPeer waits for the IPv6 link-local address of the one neighbour on
// a point-to-point port (BGP unnumbered), asking all nodes on the link if
// the kernel has not met it yet.
func linkLocalPeer(ctx context.Context, port string) (netip.Addr, error) {
	ifc, err := net.InterfaceByName(port)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("unnumbered %s: %w", port, err)
	}
	for attempt := 0; ; attempt++ {
		if a, err := oneLinkLocalNeighbor(ifc); err == nil || attempt >= 20 {
			return a, err
		}
		pingAllNodes(ifc)
		select {
		case <-ctx.Done():
			return netip.Addr{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// startFabric runs the fabric peer in namespace ns and returns what it
// hears.
func startFabric(t *testing.T, ns string, fs fabricSpec) <-chan heard {
	spec, _ := json.Marshal(fs)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^TestHelperFabric$")
	cmd.Env = append(os.Environ(), envFabric+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	ch := make(chan heard, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var h heard
			if json.Unmarshal(sc.Bytes(), &h) == nil {
				select {
				case ch <- h:
				default: // nobody listens: the fabric must not block on it
				}
			} else {
				t.Logf("fabric: %s", sc.Bytes()) // its test's failure
			}
		}
	}()
	return ch
}

// TestAgentUnnumberedFabric: BGP unnumbered over a real veth to a fabric
// peer in another namespace. The agent finds the peer's link-local address,
// brings up IPv4 and EVPN, installs the fabric's loopback in the kernel
// via the link-local next hop (RFC 5549), advertises its own loopback,
// attaches XDP to the fabric port, and imports the fabric's Type-5 routes.
func TestAgentUnnumberedFabric(t *testing.T) {
	u := newUnnumbered(t)
	eventually(t, "the fabric's loopback in the kernel via its link-local address", u.kernelRoute)
	eventually(t, "the fabric hears our loopback with an IPv6 link-local next hop", func() bool {
		select {
		case h := <-u.fabric:
			return h.Underlay && h.Prefix == pfx("10.10.10.10/32") && h.NextHop.IsLinkLocalUnicast()
		default:
			return false
		}
	})
	eventually(t, "the fabric's Type-5 route in RED", func() bool {
		rs, _ := u.dp.Routes(u.agent.ids["RED"])
		for _, r := range rs {
			if r.Prefix == pfx("192.168.1.0/24") {
				return true
			}
		}
		return false
	})
	if !u.xdpOnPort() {
		t.Error("no XDP program on the unnumbered fabric port")
	}
}

// unnumbered is a leaf's agent with an unnumbered session on swp1 to a
// fabric peer (AS 65199, loopback 10.10.10.1) on eth0 in namespace ns.
type unnumbered struct {
	ns     string
	agent  *Agent
	dp     *dataplane.Dataplane
	fabric <-chan heard
}

// The fabric link's ends keep their MACs, so a link created anew has the
// same link-local addresses.
var (
	swp1MAC   = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}
	spineMAC  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x02}
	spineLoop = netip.MustParseAddr("10.10.10.1")
)

// fabricLink creates the link between swp1 and the fabric's eth0, up.
func (u *unnumbered) fabricLink(t *testing.T) {
	netns.Veth(t, netns.Dev{Name: "swp1", MAC: swp1MAC}, netns.Dev{NS: u.ns, Name: "eth0", MAC: spineMAC})
	netns.IP(t, "link", "set", "swp1", "up")
	netns.IP(t, "-n", u.ns, "link", "set", "eth0", "up")
}

func newUnnumbered(t *testing.T) *unnumbered {
	netns.Root(t)
	u := &unnumbered{ns: netns.New(t, "spine")}
	netns.IP(t, "link", "set", "lo", "up")
	u.fabricLink(t)
	netns.IP(t, "-n", u.ns, "addr", "add", spineLoop.String()+"/32", "dev", "lo")
	netns.Veth(t, netns.Dev{Name: "swp10"}, netns.Dev{NS: netns.New(t, "h10"), Name: "eth0"})
	netns.Sysctl(t, "net.ipv4.conf.all.forwarding", "1")

	u.fabric = startFabric(t, u.ns, fabricSpec{ASN: 65199, RouterID: spineLoop, Port: "eth0",
		IPv4: []netip.Prefix{netip.PrefixFrom(spineLoop, 32)},
		Type5: []bgp.Type5{{RD: "10.10.10.1:2", Prefix: pfx("192.168.1.0/24"), VTEP: spineLoop, VNI: 4001,
			RouterMAC: leaf01MAC, RTs: []bgp.RT{{ASN: 65101, Value: 4001}}}}})

	cfgText := strings.Replace(leafConfig, "nv set vrf default router bgp neighbor 127.0.0.2 peer-group underlay\n",
		"nv set vrf default router bgp neighbor swp1 peer-group underlay\nnv set vrf default router bgp neighbor swp1 type unnumbered\n"+
			"nv set vrf default router bgp address-family ipv4-unicast enable on\n"+
			"nv set vrf default router bgp address-family ipv4-unicast network 10.10.10.10/32\n", 1)
	cfg, err := config.Parse("leaf.cfg", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	u.dp, err = dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t), RoutesPerVRF: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.dp.Close() })
	t.Cleanup(func() { u.dp.Detach("swp1") })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	u.agent, err = NewAgent(cfg, u.dp, Options{RouterMAC: routerMAC, BGPPort: -1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); u.agent.hops.stop(); u.agent.stopHosts(); u.agent.stopVerify() })
	if err := u.agent.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.agent.speaker.Stop(false) })
	return u
}

// kernelRoute says whether the fabric's loopback is in the kernel as
// xleafd installs it: BGP's, via the fabric's link-local address.
func (u *unnumbered) kernelRoute() bool {
	routes, _ := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: spineLoop.AsSlice(), Mask: net.CIDRMask(32, 32)}}, netlink.RT_FILTER_DST)
	for _, r := range routes {
		if r.Protocol == rtprotBGP && r.Via != nil {
			return true
		}
	}
	return false
}

// xdpOnPort says whether a program is attached to swp1 as it is now.
func (u *unnumbered) xdpOnPort() bool {
	link, err := netlink.LinkByName("swp1")
	if err != nil {
		return false
	}
	x := link.Attrs().Xdp
	return x != nil && x.Attached
}
