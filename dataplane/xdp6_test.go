package dataplane_test

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// TestForwarding6 is TestForwarding's IPv6 twin: every path of the data
// path for a dual-stack tenant, on the fixture's IPv6 tables (the same
// VNIs, groups and underlay as IPv4's).
func TestForwarding6(t *testing.T) {
	l := fixture.New(t)
	payload := []byte("xleaf payload: the bytes must arrive intact")
	site2Red := fixture.Flow{Src: a("2001:db8:20::110"), Dst: fixture.HostRed6, SrcPort: 1234, DstPort: 5678, TTL: 64, Payload: payload}
	toGreen := fixture.Flow{Src: a("2001:db8:20::110"), Dst: a("2001:db8:2::10"), SrcPort: 1234, DstPort: 5678, TTL: 64, TOS: 0xb8, FlowLabel: 0x12345, Payload: payload}
	hostRed := fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), SrcPort: 4000, DstPort: 80, TTL: 64, Proto: layers.IPProtocolTCP, Payload: payload}
	fromHostRed := func(f fixture.Flow) []byte { return fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f) }
	inVXLAN := func(f fixture.Flow) []byte {
		return fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, f))
	}
	withDst := func(f fixture.Flow, dst string) fixture.Flow { f.Dst = a(dst); return f }
	withSrc := func(f fixture.Flow, src string) fixture.Flow { f.Src = a(src); return f }
	// A hop-by-hop options header (next: UDP, PadN to 8 octets) and a
	// first fragment header: routed as they are, hashed by the flow label.
	hopByHop := fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), TTL: 64, Proto: layers.IPProtocolIPv6HopByHop, RawNext: true, FlowLabel: 0xbeef,
		Payload: append([]byte{17, 0, 1, 4, 0, 0, 0, 0}, payload...)}
	fragment := fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), TTL: 64, Proto: layers.IPProtocolIPv6Fragment, RawNext: true, FlowLabel: 0x7,
		Payload: append([]byte{17, 0, 0, 1, 0, 0, 0, 42}, payload...)}
	tooBig := fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), TTL: 64, Payload: make([]byte, 1500-48)}
	// Errors are built with gopacket, quoting the packet up to 1280 bytes.
	answer := func(e fixture.ICMP, frame []byte) []byte {
		return fixture.ICMPv6Error(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, fixture.RedGateway6, 63, e, frame)
	}
	unreachable, timeExceeded := fixture.ICMP{Type: 1, Code: 0}, fixture.ICMP{Type: 3, Code: 0}
	noRoute := fromHostRed(withDst(hostRed, "2001:db8:ffff::1"))
	expiring := fromHostRed(ttl(hostRed, 1))
	expiringInVXLAN := inVXLAN(ttl(site2Red, 1))
	tooBigFrame := fromHostRed(tooBig)
	blueNoRoute := fixture.Frame(t, l.Swp30.HardwareAddr, fixture.HostBlueMAC, fixture.Flow{Src: fixture.HostBlue6, Dst: fixture.HostRed6, TTL: 64})
	toBlue := fromHostRed(withDst(hostRed, fixture.HostBlue6.String()))
	// The error about a packet from site 2, back in VXLAN with site 2's
	// RED VNI (the route to its source), not the 4001 it came in with.
	answerBorder04 := func(e fixture.ICMP, inner []byte) []byte {
		answer := fixture.ICMPv6Error(t, fixture.Border04MAC, fixture.RouterMAC, fixture.RedGateway6, 63, e, inner)
		hash := dataplane.FlowHash6(answer[14:])
		return fixture.VXLAN(t, fixture.Outer{DstMAC: fixture.DCIMAC, SrcMAC: l.Swp3.HardwareAddr, Src: fixture.VTEP, Dst: fixture.Border04,
			SrcPort: uint16(49152 | (hash>>16)&0x3fff), VNI: fixture.Site2RedVNI}, answer)
	}
	justFits := fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), TTL: 64, Payload: make([]byte, 1500-50-48)}

	tests := []struct {
		name    string
		ingress int
		frame   []byte
		want    want
	}{
		{
			name: "decap to a local host", ingress: l.Swp3.Index, frame: inVXLAN(site2Red),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: fixture.Frame(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, ttl(site2Red, 63))},
		},
		{
			name: "decap, leak into GREEN, re-encap with the route's VNI", ingress: l.Swp3.Index, frame: inVXLAN(toGreen),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, toGreen, leafs(fixture.GreenVNI))},
		},
		{
			name: "decap and re-encap out of the port it came in (XDP_TX)", ingress: l.Swp3.Index, frame: inVXLAN(withDst(site2Red, "2001:db8:20::7")),
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, withDst(site2Red, "2001:db8:20::7"), border04(fixture.Site2RedVNI))},
		},
		{
			name: "access to remote: encap with the VRF's VNI", ingress: l.Swp10.Index, frame: fromHostRed(hostRed),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, hostRed, leafs(fixture.RedVNI))},
		},
		{
			name: "access to remote in a leaked VRF of site 2 (label 5002)", ingress: l.Swp10.Index, frame: fromHostRed(withDst(hostRed, "2001:db8:10::5")),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, withDst(hostRed, "2001:db8:10::5"), border04(fixture.Site2GreenVNI))},
		},
		{
			name: "access to a local host in another VRF (local leak)", ingress: l.Swp10.Index, frame: fromHostRed(withDst(hostRed, "2001:db8:200::10")),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: fixture.Frame(t, fixture.HostGreenMAC, l.Swp20.HardwareAddr, ttl(withDst(hostRed, "2001:db8:200::10"), 63))},
		},
		{
			name: "decap to a local host in a leaked VRF", ingress: l.Swp3.Index, frame: inVXLAN(withDst(site2Red, "2001:db8:200::10")),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: fixture.Frame(t, fixture.HostGreenMAC, l.Swp20.HardwareAddr, ttl(withDst(site2Red, "2001:db8:200::10"), 63))},
		},
		{
			name: "hop-by-hop options are routed, not parsed", ingress: l.Swp10.Index, frame: fromHostRed(hopByHop),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, hopByHop, leafs(fixture.RedVNI))},
		},
		{
			name: "a fragment is routed, hashed by its flow label", ingress: l.Swp10.Index, frame: fromHostRed(fragment),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, fragment, leafs(fixture.RedVNI))},
		},
		{
			name: "encapsulated size exactly the underlay MTU passes", ingress: l.Swp10.Index, frame: fromHostRed(justFits),
			want: want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote,
				out: encapTo(t, l, justFits, leafs(fixture.RedVNI))},
		},
		{
			name: "encapsulated size over the underlay MTU: packet too big back to the host, MTU less the VXLAN overhead", ingress: l.Swp10.Index, frame: tooBigFrame,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonMTU,
				out: answer(fixture.ICMP{Type: 2, MTU: fixture.UnderlayMTU - 50}, tooBigFrame)},
		},
		{
			name: "blackhole aggregate drops", ingress: l.Swp10.Index, frame: fromHostRed(withDst(hostRed, "2001:db8:2::77")),
			want: want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonBlackhole},
		},
		{
			name: "no route: destination unreachable back to the host, from RED's IPv6 address", ingress: l.Swp10.Index, frame: noRoute,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute, out: answer(unreachable, noRoute)},
		},
		{
			name: "hop limit 1: time exceeded back to the host", ingress: l.Swp10.Index, frame: expiring,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonTTL, out: answer(timeExceeded, expiring)},
		},
		{
			name: "hop limit 1 inside VXLAN: time exceeded encapsulated back to the sender's VTEP", ingress: l.Swp3.Index, frame: expiringInVXLAN,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonTTL, out: answerBorder04(timeExceeded, expiringInVXLAN[50:])},
		},
		{
			name: "hop limit 1 to the router's own address goes to the kernel", ingress: l.Swp10.Index,
			frame: fromHostRed(ttl(withDst(hostRed, "2001:db8:100::1"), 1)),
			want:  want{action: dataplane.XDPPass, vrf: fixture.RED, reason: dataplane.ReasonPassHost},
		},
		{
			name: "the router's own address over VXLAN: a counted drop", ingress: l.Swp3.Index, frame: inVXLAN(withDst(site2Red, "2001:db8:100::1")),
			want: want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonHostOverVXLAN},
		},
		{
			name: "local host without a neighbour entry drops", ingress: l.Swp10.Index, frame: fromHostRed(withDst(hostRed, "2001:db8:100::77")),
			want: want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoNeighbor},
		},
		{
			name: "BLUE imports nothing: no route to RED, unreachable from BLUE's address", ingress: l.Swp30.Index, frame: blueNoRoute,
			want: want{action: dataplane.XDPTx, vrf: fixture.BLUE, reason: dataplane.ReasonNoRoute,
				out: fixture.ICMPv6Error(t, fixture.HostBlueMAC, l.Swp30.HardwareAddr, fixture.BlueGateway6, 63, unreachable, blueNoRoute)},
		},
		{
			name: "RED has no route to BLUE", ingress: l.Swp10.Index, frame: toBlue,
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute, out: answer(unreachable, toBlue)},
		},
		{
			name: "a big packet is quoted up to 1280 bytes of error", ingress: l.Swp10.Index,
			frame: fromHostRed(fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:ffff::1"), TTL: 64, Payload: make([]byte, 1400)}),
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute,
				out: answer(unreachable, fromHostRed(fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:ffff::1"), TTL: 64, Payload: make([]byte, 1400)}))},
		},
		{
			name: "an ICMPv6 error is not answered", ingress: l.Swp10.Index,
			frame: fromHostRed(fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:ffff::1"), TTL: 64, Proto: layers.IPProtocolICMPv6, RawNext: true, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0}}),
			want:  want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute},
		},
		{
			name: "an echo request is answered", ingress: l.Swp10.Index,
			frame: fromHostRed(fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:ffff::1"), TTL: 64, Proto: layers.IPProtocolICMPv6, RawNext: true, Payload: []byte{128, 0, 0, 0, 0, 0, 0, 0}}),
			want: want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute,
				out: answer(unreachable, fromHostRed(fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:ffff::1"), TTL: 64, Proto: layers.IPProtocolICMPv6, RawNext: true, Payload: []byte{128, 0, 0, 0, 0, 0, 0, 0}}))},
		},
		{
			name: "a packet behind an extension header is not answered", ingress: l.Swp10.Index,
			frame: fromHostRed(fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:ffff::1"), TTL: 64, Proto: layers.IPProtocolIPv6HopByHop, RawNext: true, Payload: []byte{58, 0, 1, 4, 0, 0, 0, 0, 1, 0, 0, 0}}),
			want:  want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute},
		},
		{
			name: "neighbour solicitation to its multicast group: the kernel's", ingress: l.Swp10.Index,
			frame: neighborSolicit(t, mustMAC("33:33:ff:00:00:01"), "ff02::1:ff00:1", "2001:db8:100::1"),
			want:  want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name: "unicast neighbour solicitation to the port's link-local address: the kernel's", ingress: l.Swp10.Index,
			frame: neighborSolicit(t, l.Swp10.HardwareAddr, "fe80::1", "fe80::1"),
			want:  want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name: "router solicitation to all-routers: the kernel's", ingress: l.Swp10.Index,
			frame: fixture.Frame(t, mustMAC("33:33:00:00:00:02"), fixture.HostRedMAC, fixture.Flow{Src: a("fe80::10"), Dst: a("ff02::2"), Proto: layers.IPProtocolICMPv6, TTL: 255, Payload: []byte{133, 0, 0, 0, 0, 0, 0, 0}}),
			want:  want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			// A host's unicast NUD probe to the gateway's address comes
			// from its link-local address: the link's, as ARP is.
			name: "a link-local source from a host: the kernel's (a NUD probe to our address; Linux routes none of it)", ingress: l.Swp10.Index,
			frame: neighborSolicit(t, l.Swp10.HardwareAddr, "2001:db8:100::1", "2001:db8:100::1"),
			want:  want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name: "the unspecified source from a host: the kernel's (DAD)", ingress: l.Swp10.Index, frame: fromHostRed(withSrc(hostRed, "::")),
			want: want{action: dataplane.XDPPass, reason: dataplane.ReasonPass},
		},
		{
			name: "a link-local source inside VXLAN drops (RFC 4291 2.5.6)", ingress: l.Swp3.Index, frame: inVXLAN(withSrc(site2Red, "fe80::10")),
			want: want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonScope},
		},
		{
			name: "link-local destination inside VXLAN drops: the fabric is no link", ingress: l.Swp3.Index, frame: inVXLAN(withDst(site2Red, "fe80::10")),
			want: want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonScope},
		},
		{
			name: "multicast destination inside VXLAN drops", ingress: l.Swp3.Index, frame: inVXLAN(withDst(site2Red, "ff0e::10")),
			want: want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonScope},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, l, tt.ingress, tt.frame, tt.want) })
	}
}

// neighborSolicit is an NS from RED's host for target, to dst.
func neighborSolicit(t *testing.T, dstMAC net.HardwareAddr, dst, target string) []byte {
	body := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, a(target).AsSlice()...)
	return fixture.Frame(t, dstMAC, fixture.HostRedMAC, fixture.Flow{Src: a("fe80::10"), Dst: a(dst), Proto: layers.IPProtocolICMPv6, TTL: 255, Payload: body})
}

// TestBadHeaders6: an IPv6 packet cut at every boundary of its headers, or
// inconsistent, from VXLAN and from an access port, is a counted drop (or
// the kernel's, when it is not ours), never forwarded and never passed up
// from VXLAN.
func TestBadHeaders6(t *testing.T) {
	l := fixture.New(t)
	flow := fixture.Flow{Src: a("2001:db8:20::110"), Dst: fixture.HostRed6, SrcPort: 1, DstPort: 2, TTL: 64, Payload: []byte("0123456789")}
	inner := fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, flow)
	access := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), TTL: 64, Payload: []byte("0123456789")})
	decap := func(inner []byte) []byte { return fromBorder04(t, l, fixture.RedVNI, inner) }
	edit := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	drop := func(r dataplane.Reason) want { return want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: r} }

	tests := []struct {
		name    string
		ingress int
		frame   []byte
		want    want
	}{
		{"inner cut after Ethernet", l.Swp3.Index, decap(inner[:14]), drop(dataplane.ReasonMalformed)},
		{"inner cut inside the fixed header", l.Swp3.Index, decap(inner[:14+39]), drop(dataplane.ReasonMalformed)},
		{"inner fixed header only, payload length past it", l.Swp3.Index, decap(inner[:14+40]), drop(dataplane.ReasonMalformed)},
		{"inner cut inside the payload", l.Swp3.Index, decap(inner[:len(inner)-1]), drop(dataplane.ReasonMalformed)},
		{"inner version 4 with the IPv6 ethertype", l.Swp3.Index, decap(edit(inner, func(b []byte) { b[14] = 0x45 })), drop(dataplane.ReasonMalformed)},
		{"inner payload length past the frame", l.Swp3.Index, decap(edit(inner, func(b []byte) { binary.BigEndian.PutUint16(b[18:], 1000) })), drop(dataplane.ReasonMalformed)},
		{"access cut inside the fixed header", l.Swp10.Index, access[:14+20], drop(dataplane.ReasonMalformed)},
		{"access payload length past the frame", l.Swp10.Index, edit(access, func(b []byte) { binary.BigEndian.PutUint16(b[18:], 1000) }), drop(dataplane.ReasonMalformed)},
		{"access IPv6 to another MAC: the kernel's", l.Swp10.Index, edit(access, func(b []byte) { copy(b, otherMAC) }),
			want{action: dataplane.XDPPass, reason: dataplane.ReasonPass}},
		// Frame padding past the payload is allowed, as for IPv4.
		{"inner with Ethernet padding after the payload", l.Swp3.Index, decap(append(append([]byte(nil), inner...), 0, 0, 0, 0)),
			want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
				out: append(fixture.Frame(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, ttl(flow, 63)), 0, 0, 0, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, l, tt.ingress, tt.frame, tt.want) })
	}
}
