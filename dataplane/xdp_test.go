package dataplane_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket/layers"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

func TestMain(m *testing.M) { netns.Main(m) }

var (
	otherMAC = mustMAC("02:aa:bb:cc:dd:ee")
	a        = netip.MustParseAddr
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// want is one expected verdict: the action, the single counter it moves,
// and the frame that leaves (nil when nothing leaves).
type want struct {
	action int
	vrf    dataplane.VRFID
	reason dataplane.Reason
	out    []byte
}

// expect runs frame through the XDP program and the reference model and
// holds both to w: action, output bytes, and exactly one counter moved by
// one packet of len(frame) bytes.
func expect(t *testing.T, l *fixture.Leaf, ingress int, frame []byte, w want) {
	t.Helper()
	before, err := l.DP.Counters()
	if err != nil {
		t.Fatal(err)
	}
	action, out := fixture.Run(t, l.DP.Program(), ingress, frame)
	after, err := l.DP.Counters()
	if err != nil {
		t.Fatal(err)
	}

	if action != w.action {
		t.Errorf("action = %d, want %d", action, w.action)
	}
	if w.out != nil {
		if diff := cmp.Diff(w.out, out); diff != "" {
			t.Errorf("frame out (-want +got):\n%s", diff)
		}
	}
	// A dropped frame is freed (one rewritten into an ICMP error that could
	// not be forwarded may keep the rewrite); the kernel's must be intact.
	if action == dataplane.XDPPass && !bytes.Equal(out, frame) {
		t.Errorf("a frame passed to the kernel was modified:\n%s", cmp.Diff(frame, out))
	}
	wantDelta := map[dataplane.CounterKey]dataplane.Counter{
		{VRF: w.vrf, Reason: w.reason}: {Packets: 1, Bytes: uint64(len(frame))},
	}
	if diff := cmp.Diff(wantDelta, delta(before, after)); diff != "" {
		t.Errorf("counters moved (-want +got):\n%s", diff)
	}

	got := l.Model().Forward(ingress, frame)
	if got.Action != w.action || got.Reason != w.reason || got.VRF != w.vrf {
		t.Errorf("model: action %d %v vrf %d, want %d %v vrf %d", got.Action, got.Reason, got.VRF, w.action, w.reason, w.vrf)
	}
	if w.out != nil && !bytes.Equal(got.Out, w.out) {
		t.Errorf("model frame out (-want +got):\n%s", cmp.Diff(w.out, got.Out))
	}
}

func delta[K comparable](before, after map[K]dataplane.Counter) map[K]dataplane.Counter {
	d := map[K]dataplane.Counter{}
	for k, c := range after {
		b := before[k]
		if c != b {
			d[k] = dataplane.Counter{Packets: c.Packets - b.Packets, Bytes: c.Bytes - b.Bytes}
		}
	}
	return d
}

// fromBorder04 is VXLAN from site 2's border leaf over the DCI link.
func fromBorder04(t *testing.T, l *fixture.Leaf, vni uint32, inner []byte) []byte {
	return fixture.VXLAN(t, fixture.Outer{
		DstMAC: l.Swp3.HardwareAddr, SrcMAC: fixture.DCIMAC,
		Src: fixture.Border04, Dst: fixture.VTEP, SrcPort: 50000, VNI: vni,
	}, inner)
}

// answerHost is the ICMP error e about frame, from a host on swp10, back
// to that host from address from.
func answerHost(t *testing.T, l *fixture.Leaf, from netip.Addr, e fixture.ICMP, frame []byte) []byte {
	return fixture.ICMPError(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, from, 63, e, frame)
}

// answerBorder04 is the ICMP error e about inner (VXLAN from borderleaf04)
// back to it in VXLAN with vni.
func answerBorder04(t *testing.T, l *fixture.Leaf, from netip.Addr, e fixture.ICMP, inner []byte, vni uint32) []byte {
	answer := fixture.ICMPError(t, fixture.Border04MAC, fixture.RouterMAC, from, 63, e, inner)
	hash := dataplane.FlowHash(answer[14:])
	return fixture.VXLAN(t, fixture.Outer{
		DstMAC: fixture.DCIMAC, SrcMAC: l.Swp3.HardwareAddr, Src: fixture.VTEP, Dst: fixture.Border04,
		SrcPort: uint16(49152 | (hash>>16)&0x3fff), VNI: vni, TOS: answer[15],
	}, answer)
}

// encapTo is what xleaf sends towards a remote member for flow f.
func encapTo(t *testing.T, l *fixture.Leaf, f fixture.Flow, members []dataplane.Remote) []byte {
	inner := fixture.Frame(t, otherMAC, otherMAC, f) // only its IP part matters here
	hash := dataplane.FlowHash(inner[14:])
	if f.Dst.Is6() {
		hash = dataplane.FlowHash6(inner[14:])
	}
	nh := dataplane.PickRemote(members, hash)
	egress, dmac := l.Swp1, fixture.SpineMAC
	if nh.VTEP == fixture.Border04 {
		egress, dmac = l.Swp3, fixture.DCIMAC
	}
	f.TTL--
	return fixture.VXLAN(t, fixture.Outer{
		DstMAC: dmac, SrcMAC: egress.HardwareAddr, Src: fixture.VTEP, Dst: nh.VTEP,
		SrcPort: uint16(49152 | (hash>>16)&0x3fff), VNI: nh.VNI, TOS: f.TOS,
	}, fixture.Frame(t, nh.RouterMAC, fixture.RouterMAC, f))
}

func leafs(vni uint32) []dataplane.Remote {
	return []dataplane.Remote{
		{VTEP: fixture.Leaf01, VNI: vni, RouterMAC: fixture.Leaf01MAC},
		{VTEP: fixture.Leaf02, VNI: vni, RouterMAC: fixture.Leaf02MAC},
	}
}

func border04(vni uint32) []dataplane.Remote {
	return []dataplane.Remote{{VTEP: fixture.Border04, VNI: vni, RouterMAC: fixture.Border04MAC}}
}

func ttl(f fixture.Flow, n uint8) fixture.Flow { f.TTL = n; return f }

// TestForwarding covers every path of the data path on borderleaf01.
func TestForwarding(t *testing.T) {
	l := fixture.New(t)
	payload := []byte("xleaf payload: the bytes must arrive intact")
	site2Red := fixture.Flow{Src: a("192.168.20.110"), Dst: a("192.168.100.10"), SrcPort: 1234, DstPort: 5678, TTL: 64, Payload: payload}
	toGreen := fixture.Flow{Src: a("192.168.20.110"), Dst: a("192.168.2.10"), SrcPort: 1234, DstPort: 5678, TTL: 64, TOS: 0xb8, Payload: payload}
	hostRed := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: 4000, DstPort: 80, TTL: 64, Proto: layers.IPProtocolTCP, Payload: payload}
	fromHostRed := func(f fixture.Flow) []byte {
		return fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f)
	}
	withDst := func(f fixture.Flow, dst string) fixture.Flow { f.Dst = a(dst); return f }
	df := func(f fixture.Flow) fixture.Flow { f.DF = true; return f }
	noRoute := fromHostRed(withDst(hostRed, "172.31.0.1"))
	expiring := fromHostRed(ttl(hostRed, 1))
	expiringInVXLAN := fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, ttl(site2Red, 1)))
	blueToRed := fixture.Frame(t, l.Swp30.HardwareAddr, fixture.HostBlueMAC, fixture.Flow{Src: fixture.HostBlue, Dst: fixture.HostRed, TTL: 64})
	redToBlue := fromHostRed(withDst(hostRed, fixture.HostBlue.String()))
	bigDF := fromHostRed(fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 64, DF: true, Payload: make([]byte, 1500-28)})
	jumboDF := fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, df(fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, TTL: 64, Payload: make([]byte, 2000)})))
	unreachable := fixture.ICMP{Type: 3, Code: 0}
	timeExceeded := fixture.ICMP{Type: 11, Code: 0}

	tests := []struct {
		name    string
		ingress int
		frame   []byte
		want    want
	}{
		{
			name:    "decap to a local host",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2Red)),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: fixture.Frame(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, ttl(site2Red, 63))},
		},
		{
			// The guide's hairpin: VNI 4001 (RED) in, RED's leaked route
			// 192.168.2.10/32 label 4002 out, towards leaf01 or leaf02.
			name:    "decap, leak into GREEN, re-encap with the route's VNI",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, toGreen)),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, toGreen, leafs(fixture.GreenVNI))},
		},
		{
			name:    "decap and re-encap out of the port it came in (XDP_TX)",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, withDst(site2Red, "192.168.20.7"))),
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, withDst(site2Red, "192.168.20.7"), border04(fixture.Site2RedVNI))},
		},
		{
			name:    "access to remote: encap with the VRF's VNI",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(hostRed),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, hostRed, leafs(fixture.RedVNI))},
		},
		{
			name:    "access to router MAC is routed too",
			ingress: l.Swp10.Index,
			frame:   fixture.Frame(t, fixture.RouterMAC, fixture.HostRedMAC, hostRed),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, hostRed, leafs(fixture.RedVNI))},
		},
		{
			name:    "access to remote in a leaked VRF of site 2 (label 5002)",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.10.5")),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, withDst(hostRed, "192.168.10.5"), border04(fixture.Site2GreenVNI))},
		},
		{
			name:    "access to a local host in another VRF (local leak)",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.200.10")),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: fixture.Frame(t, fixture.HostGreenMAC, l.Swp20.HardwareAddr, ttl(withDst(hostRed, "192.168.200.10"), 63))},
		},
		{
			name:    "decap to a local host in a leaked VRF",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, withDst(site2Red, "192.168.200.10"))),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: fixture.Frame(t, fixture.HostGreenMAC, l.Swp20.HardwareAddr, ttl(withDst(site2Red, "192.168.200.10"), 63))},
		},
		{
			name:    "blackhole aggregate drops",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.2.77")),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonBlackhole},
		},
		{
			name:    "no route: net unreachable back to the host, from RED's address",
			ingress: l.Swp10.Index,
			frame:   noRoute,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute,
				out: answerHost(t, l, fixture.RedGateway, unreachable, noRoute)},
		},
		{
			name:    "TTL 1 from a host: time exceeded back to it",
			ingress: l.Swp10.Index,
			frame:   expiring,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonTTL,
				out: answerHost(t, l, fixture.RedGateway, timeExceeded, expiring)},
		},
		{
			// Routed back in RED: to borderleaf04 with site 2's RED VNI
			// (5001), not the 4001 it came in with.
			name:    "TTL 1 inside VXLAN: time exceeded encapsulated back to the sender's VTEP",
			ingress: l.Swp3.Index,
			frame:   expiringInVXLAN,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonTTL,
				out: answerBorder04(t, l, fixture.RedGateway, timeExceeded, expiringInVXLAN[50:], fixture.Site2RedVNI)},
		},
		{
			name:    "TTL 1 to the router's own address goes to the kernel",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(ttl(withDst(hostRed, "192.168.100.1"), 1)),
			want:    want{action: dataplane.XDPPass, vrf: fixture.RED, reason: dataplane.ReasonPassHost},
		},
		{
			name:    "the router's own address over VXLAN: a counted drop (no kernel device takes the outer datagram)",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, withDst(site2Red, "192.168.100.1"))),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonHostOverVXLAN},
		},
		{
			name:    "encapsulated size over the underlay MTU with DF: fragmentation needed, MTU less the VXLAN overhead",
			ingress: l.Swp10.Index,
			frame:   bigDF,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonMTU,
				out: answerHost(t, l, fixture.RedGateway, fixture.ICMP{Type: 3, Code: 4, MTU: fixture.UnderlayMTU - 50}, bigDF)},
		},
		{
			name:    "jumbo inner frame with DF to a 1500 access port: fragmentation needed back in VXLAN",
			ingress: l.Swp3.Index,
			frame:   jumboDF,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonMTU,
				out: answerBorder04(t, l, fixture.RedGateway, fixture.ICMP{Type: 3, Code: 4, MTU: 1500}, jumboDF[50:], fixture.Site2RedVNI)},
		},
		{
			name:    "encapsulated size over the underlay MTU without DF drops (no fragmenting)",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 64, Payload: make([]byte, 1500-28)}),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonMTU},
		},
		{
			name:    "encapsulated size exactly the underlay MTU passes",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 64, Payload: make([]byte, 1500-50-28)}),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 64, Payload: make([]byte, 1500-50-28)}, leafs(fixture.RedVNI))},
		},
		{
			name:    "jumbo inner frame without DF to a 1500 access port drops",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, TTL: 64, Payload: make([]byte, 2000)})),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonMTU},
		},
		{
			name:    "unknown VNI drops",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, 9999, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2Red)),
			want:    want{action: dataplane.XDPDrop, vrf: 0, reason: dataplane.ReasonUnknownVNI},
		},
		{
			name:    "inner frame not to our router MAC drops",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, otherMAC, fixture.Border04MAC, site2Red)),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonBadRouterMAC},
		},
		{
			name:    "local host without a neighbour entry drops",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.100.77")),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoNeighbor},
		},
		{
			name:    "remote VTEP with an unresolved underlay next hop drops",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.99.5")),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonUnderlayNeigh},
		},
		{
			name:    "remote VTEP without an underlay route drops",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.98.5")),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoUnderlay},
		},
		{
			name:    "BLUE cannot reach RED: unreachable from BLUE's address",
			ingress: l.Swp30.Index,
			frame:   blueToRed,
			want: want{action: dataplane.XDPTx, vrf: fixture.BLUE, reason: dataplane.ReasonNoRoute,
				out: fixture.ICMPError(t, fixture.HostBlueMAC, l.Swp30.HardwareAddr, fixture.BlueGateway, 63, unreachable, blueToRed)},
		},
		{
			name:    "RED cannot reach BLUE",
			ingress: l.Swp10.Index,
			frame:   redToBlue,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute,
				out: answerHost(t, l, fixture.RedGateway, unreachable, redToBlue)},
		},
		{
			// Its unreachable is routed in BLUE too, which has no way back
			// to site 2: dropped, never leaked.
			name:    "BLUE's VNI cannot reach RED's host, nor answer",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.BlueVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2Red)),
			want:    want{action: dataplane.XDPDrop, vrf: fixture.BLUE, reason: dataplane.ReasonNoRoute},
		},
		{
			name:    "VXLAN to another address is the kernel's",
			ingress: l.Swp3.Index,
			frame: fixture.VXLAN(t, fixture.Outer{DstMAC: l.Swp3.HardwareAddr, SrcMAC: fixture.DCIMAC, Src: fixture.Border04,
				Dst: a("10.10.10.99"), SrcPort: 50000, VNI: fixture.RedVNI}, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2Red)),
			want: want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name:    "VXLAN to another MAC is the kernel's",
			ingress: l.Swp3.Index,
			frame: fixture.VXLAN(t, fixture.Outer{DstMAC: otherMAC, SrcMAC: fixture.DCIMAC, Src: fixture.Border04,
				Dst: fixture.VTEP, SrcPort: 50000, VNI: fixture.RedVNI}, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2Red)),
			want: want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name:    "BGP on an uplink is the kernel's",
			ingress: l.Swp3.Index,
			frame: fixture.Frame(t, l.Swp3.HardwareAddr, fixture.DCIMAC, fixture.Flow{Src: fixture.DCIPeer, Dst: fixture.DCISelf.Addr(),
				SrcPort: 40000, DstPort: 179, Proto: layers.IPProtocolTCP, TTL: 1}),
			want: want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name:    "a host's packet to the gateway address is the kernel's",
			ingress: l.Swp10.Index,
			frame:   fromHostRed(withDst(hostRed, "192.168.100.1")),
			want:    want{action: dataplane.XDPPass, vrf: fixture.RED, reason: dataplane.ReasonPassHost},
		},
		{
			name:    "a host's frame to another MAC is the kernel's",
			ingress: l.Swp10.Index,
			frame:   fixture.Frame(t, otherMAC, fixture.HostRedMAC, hostRed),
			want:    want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, l, tt.ingress, tt.frame, tt.want) })
	}
}

// TestMissesNotifyTheAgent: a drop for an unresolved neighbour tells the
// agent what to resolve.
func TestMissesNotifyTheAgent(t *testing.T) {
	l := fixture.New(t)
	ev, err := l.DP.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	send := func(dst string) {
		f := fixture.Flow{Src: fixture.HostRed, Dst: a(dst), TTL: 64}
		fixture.Run(t, l.DP.Program(), l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
	}
	send("192.168.200.77") // local leak into GREEN, host unknown
	send("192.168.99.5")   // remote behind an unresolved underlay next hop
	var got []dataplane.Event
	for range 2 {
		e, err := ev.Read()
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		got = append(got, e)
	}
	want := []dataplane.Event{
		{Kind: dataplane.NeighborMiss, VRF: fixture.GREEN, Addr: a("192.168.200.77")},
		{Kind: dataplane.UnderlayMiss, VRF: fixture.RED, Ifindex: l.Swp3.Index, Addr: a("169.254.3.5")},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestMissEventsRateLimited: a flood of packets to one unresolved host
// sends the agent a burst of events, not one per packet; the rest are
// counted as suppressed, and every packet still as a drop.
func TestMissEventsRateLimited(t *testing.T) {
	l := fixture.New(t)
	ev, err := l.DP.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	const flood = 2000
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.200.77"), TTL: 64})
	start := time.Now()
	opts := ebpf.RunOptions{Data: frame, Repeat: flood,
		Context: struct{ Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32 }{
			DataEnd: uint32(len(frame)), IngressIfindex: uint32(l.Swp10.Index)}}
	ret, err := l.DP.Program().Run(&opts)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if int(ret) != dataplane.XDPDrop {
		t.Fatalf("action %d, want drop", ret)
	}
	events := 0
	for {
		ev.(*dataplane.Events).SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := ev.Read(); err != nil {
			break
		}
		events++
	}
	suppressed, err := l.DP.SuppressedEvents()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d packets in %v: %d events, %d suppressed", flood, took.Round(time.Microsecond), events, suppressed)
	// The burst, plus what the budget refills while the flood runs (1 a ms).
	if most := 64 + int(took/time.Millisecond) + 1; events < 1 || events > most {
		t.Errorf("%d packets to an unresolved host sent %d events in %v, want 1..%d", flood, events, took, most)
	}
	if int(suppressed)+events != flood {
		t.Errorf("%d events sent and %d suppressed, want %d in all", events, suppressed, flood)
	}
	cs, err := l.DP.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got := cs[dataplane.CounterKey{VRF: fixture.RED, Reason: dataplane.ReasonNoNeighbor}].Packets; got != flood {
		t.Errorf("drop-no-neighbor counted %d packets in RED (the ingress VRF), want %d: %v", got, flood, cs)
	}
}

// TestECMP: flows spread over both leafs, each flow keeps its member, and
// removing a member moves only that member's flows.
func TestECMP(t *testing.T) {
	l := fixture.New(t)
	three := append(leafs(fixture.RedVNI), border04(fixture.RedVNI)...)
	dst := netip.MustParsePrefix("192.168.1.10/32")
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: dst, Kind: dataplane.RouteRemote, Remotes: three}); err != nil {
		t.Fatal(err)
	}
	const flows = 3000
	member := func(sport uint16) netip.Addr {
		f := fixture.Flow{Src: fixture.HostRed, Dst: dst.Addr(), SrcPort: sport, DstPort: 443, TTL: 64}
		action, out := fixture.Run(t, l.DP.Program(), l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
		if action != dataplane.XDPRedirect && action != dataplane.XDPTx {
			t.Fatalf("flow %d: action %d", sport, action)
		}
		return netip.AddrFrom4([4]byte(out[30:34]))
	}
	before := map[uint16]netip.Addr{}
	share := map[netip.Addr]int{}
	for sport := uint16(1); sport <= flows; sport++ {
		before[sport] = member(sport)
		share[before[sport]]++
	}
	for _, m := range three {
		if n := share[m.VTEP]; n < flows/3*7/10 {
			t.Errorf("member %v got %d of %d flows, want at least 70%% of a fair share", m.VTEP, n, flows)
		}
	}
	for sport := uint16(1); sport <= 100; sport++ {
		if got := member(sport); got != before[sport] {
			t.Fatalf("flow %d moved from %v to %v with no change", sport, before[sport], got)
		}
	}

	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: dst, Kind: dataplane.RouteRemote, Remotes: leafs(fixture.RedVNI)}); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for sport := uint16(1); sport <= flows; sport++ {
		got := member(sport)
		switch {
		case before[sport] == fixture.Border04:
			moved++
			if got == fixture.Border04 {
				t.Fatalf("flow %d still goes to the removed member", sport)
			}
		case got != before[sport]:
			t.Fatalf("flow %d moved from %v to %v, but only %v's flows may move", sport, before[sport], got, fixture.Border04)
		}
	}
	if moved != share[fixture.Border04] {
		t.Errorf("moved %d flows, want %d", moved, share[fixture.Border04])
	}
}

// TestChecksumsValid: every frame that leaves has valid outer and inner
// IPv4 checksums, whatever path it took.
func TestChecksumsValid(t *testing.T) {
	l := fixture.New(t)
	for i, dst := range []string{"192.168.1.10", "192.168.2.10", "192.168.10.1", "192.168.200.10", "192.168.20.9"} {
		f := fixture.Flow{Src: fixture.HostRed, Dst: a(dst), SrcPort: uint16(1000 + i), DstPort: 53, TTL: uint8(2 + 60*i%250), TOS: uint8(i * 4)}
		_, out := fixture.Run(t, l.DP.Program(), l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
		for off := 14; off+20 <= len(out); {
			if sum := onesSum(out[off : off+20]); sum != 0xffff {
				t.Errorf("to %s: IPv4 header at %d: checksum invalid (sum %#x)", dst, off, sum)
			}
			if out[off+9] != 17 || binary.BigEndian.Uint16(out[off+22:]) != 4789 {
				break
			}
			off += 20 + 8 + 8 + 14 // into the VXLAN payload
		}
	}
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestVNIsSharingAPosition: a VNI whose low 16 bits are RED's (so its
// position in vni_index is RED's, and RED, the lower VNI, holds it) still
// reaches its own VRF, by the slower checks, and RED's still reaches RED;
// once RED goes, the other VNI takes the position and its packets still
// reach only its VRF.
func TestVNIsSharingAPosition(t *testing.T) {
	l := fixture.New(t)
	const other = dataplane.VRFID(9)
	otherVNI := uint32(fixture.RedVNI + dataplane.VNIIndexSize)
	if err := l.DP.SetVRF(dataplane.VRF{ID: other, VNI: otherVNI, RouterMAC: fixture.RouterMAC, VTEP: fixture.VTEP}); err != nil {
		t.Fatal(err)
	}
	// No route in either VRF for this address: the counter says which
	// VRF looked it up.
	inner := fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC,
		fixture.Flow{Src: a("192.168.20.110"), Dst: a("172.31.255.1"), SrcPort: 1, DstPort: 2, TTL: 64})
	lookedUpIn := func(vni uint32) map[dataplane.CounterKey]dataplane.Counter {
		t.Helper()
		before, err := l.DP.Counters()
		if err != nil {
			t.Fatal(err)
		}
		fixture.Run(t, l.DP.Program(), l.Swp3.Index, fromBorder04(t, l, vni, inner))
		after, err := l.DP.Counters()
		if err != nil {
			t.Fatal(err)
		}
		d := delta(before, after)
		for k, c := range d {
			d[k] = dataplane.Counter{Packets: c.Packets}
		}
		return d
	}
	in := func(vrf dataplane.VRFID) map[dataplane.CounterKey]dataplane.Counter {
		return map[dataplane.CounterKey]dataplane.Counter{{VRF: vrf, Reason: dataplane.ReasonNoRoute}: {Packets: 1}}
	}
	for _, step := range []string{"both", "RED gone"} {
		if step == "RED gone" {
			if err := l.DP.DeleteVRF(fixture.RED); err != nil {
				t.Fatal(err)
			}
		} else if diff := cmp.Diff(in(fixture.RED), lookedUpIn(fixture.RedVNI)); diff != "" {
			t.Errorf("%s: RED's VNI (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(in(other), lookedUpIn(otherVNI)); diff != "" {
			t.Errorf("%s: VNI %d (-want +got):\n%s", step, otherVNI, diff)
		}
	}
	want := map[dataplane.CounterKey]dataplane.Counter{{VRF: 0, Reason: dataplane.ReasonUnknownVNI}: {Packets: 1}}
	if diff := cmp.Diff(want, lookedUpIn(fixture.RedVNI)); diff != "" {
		t.Errorf("RED's VNI after RED went (-want +got):\n%s", diff)
	}
}
