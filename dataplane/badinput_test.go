package dataplane_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// Offsets into a VXLAN frame as the fabric sends it.
const (
	outerIP   = 14
	outerUDP  = outerIP + 20
	vxlanHdr  = outerUDP + 8
	innerEth  = vxlanHdr + 8
	innerIP   = innerEth + 14
	innerL4   = innerIP + 20
	accessIP  = 14
	accessL4  = accessIP + 20
	ipv4Check = 10
)

// TestTruncated cuts a frame at every length: each gets the verdict its
// headers earn (the kernel's when it cannot be ours, a counted drop once it
// is), never a forwarded packet.
func TestTruncated(t *testing.T) {
	l := fixture.New(t)
	flow := fixture.Flow{Src: a("192.168.20.110"), Dst: a("192.168.2.10"), SrcPort: 7, DstPort: 9, TTL: 64, Payload: []byte("0123456789")}
	decap := fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, flow))
	access := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 64, Payload: []byte("0123456789")})

	// Cuts inside the Ethernet padding after the datagram are forwarded.
	forwarded := func(ingress int, frame []byte) want {
		v := l.Model().Forward(ingress, frame)
		return want{action: v.Action, vrf: v.VRF, reason: v.Reason, out: v.Out}
	}
	decapEnd := innerIP + int(binary.BigEndian.Uint16(decap[innerIP+2:]))
	accessEnd := accessIP + int(binary.BigEndian.Uint16(access[accessIP+2:]))
	decapWant := func(n int) want {
		switch {
		case n >= decapEnd:
			return forwarded(l.Swp3.Index, decap[:n])
		case n < innerEth: // outer IPv4, UDP or VXLAN header cut: counted, VRF not known yet
			return want{action: dataplane.XDPDrop, reason: dataplane.ReasonMalformed}
		default: // inner Ethernet, IPv4 header or payload (shorter than its tot_len) cut
			return want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonMalformed}
		}
	}
	accessWant := func(n int) want {
		if n >= accessEnd {
			return forwarded(l.Swp10.Index, access[:n])
		}
		return want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonMalformed}
	}
	for _, c := range []struct {
		name    string
		ingress int
		frame   []byte
		want    func(int) want
	}{
		{"vxlan", l.Swp3.Index, decap, decapWant},
		{"access", l.Swp10.Index, access, accessWant},
	} {
		for n := 14; n < len(c.frame); n++ {
			t.Run(fmt.Sprintf("%s/%d of %d bytes", c.name, n, len(c.frame)), func(t *testing.T) {
				expect(t, l, c.ingress, c.frame[:n:n], c.want(n))
			})
		}
	}
}

// TestBadHeaders: every malformed or unsupported header has its verdict.
func TestBadHeaders(t *testing.T) {
	l := fixture.New(t)
	site2 := fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, SrcPort: 7, DstPort: 9, TTL: 64, Payload: []byte("payload")}
	innerOK := fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2)
	decap := func(inner []byte) []byte { return fromBorder04(t, l, fixture.RedVNI, inner) }
	hostFlow := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: 7, DstPort: 9, TTL: 64, Payload: []byte("payload")}
	access := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, hostFlow)

	// edit copies b, applies f, and fixes the IPv4 checksum at ipOff if >= 0.
	edit := func(b []byte, ipOff int, f func([]byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		if ipOff >= 0 {
			fixIPv4Checksum(c[ipOff:])
		}
		return c
	}
	drop := func(vrf dataplane.VRFID, r dataplane.Reason) want {
		return want{action: dataplane.XDPDrop, vrf: vrf, reason: r}
	}
	toKernel := want{action: dataplane.XDPPass, reason: dataplane.ReasonPass}
	ttl0 := decap(edit(innerOK, 14, func(b []byte) { b[14+8] = 0 }))
	options := withOptions(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: fixture.HostBlue, TTL: 64})

	tests := []struct {
		name    string
		ingress int
		frame   []byte
		want    want
	}{
		{"VXLAN without the I flag", l.Swp3.Index, edit(decap(innerOK), -1, func(b []byte) { b[vxlanHdr] = 0 }),
			drop(0, dataplane.ReasonBadVXLAN)},
		{"VXLAN with a reserved flag", l.Swp3.Index, edit(decap(innerOK), -1, func(b []byte) { b[vxlanHdr] = 0x0c }),
			drop(0, dataplane.ReasonBadVXLAN)},
		{"VXLAN with reserved bits after the VNI", l.Swp3.Index, edit(decap(innerOK), -1, func(b []byte) { b[vxlanHdr+7] = 1 }),
			drop(0, dataplane.ReasonBadVXLAN)},
		{"outer IPv4 options: the kernel's", l.Swp3.Index, outerWithOptions(t, l, innerOK), toKernel},
		{"outer fragment: the kernel's", l.Swp3.Index, edit(decap(innerOK), outerIP, func(b []byte) { b[outerIP+6] = 0x20 }), toKernel},
		{"outer VLAN tag: the kernel's", l.Swp3.Index, tagged(t, decap(innerOK)), toKernel},
		{"inner VLAN tag", l.Swp3.Index, decap(tagged(t, innerOK)), drop(fixture.RED, dataplane.ReasonUnsupported)},
		{"inner IPv6 to no route of RED's", l.Swp3.Index, decap(ipv6Frame(t, fixture.RouterMAC)), drop(fixture.RED, dataplane.ReasonNoRoute)},
		{"inner ARP", l.Swp3.Index, decap(arpFrame(t, fixture.RouterMAC)), drop(fixture.RED, dataplane.ReasonUnsupported)},
		{"inner IPv4 version 6", l.Swp3.Index, decap(edit(innerOK, 14, func(b []byte) { b[14] = 0x65 })), drop(fixture.RED, dataplane.ReasonMalformed)},
		{"inner IHL below 5", l.Swp3.Index, decap(edit(innerOK, 14, func(b []byte) { b[14] = 0x44 })), drop(fixture.RED, dataplane.ReasonMalformed)},
		{"inner total length below the header", l.Swp3.Index, decap(edit(innerOK, 14, func(b []byte) { binary.BigEndian.PutUint16(b[16:], 19) })),
			drop(fixture.RED, dataplane.ReasonMalformed)},
		{"inner total length past the frame", l.Swp3.Index, decap(edit(innerOK, 14, func(b []byte) { binary.BigEndian.PutUint16(b[16:], 1400) })),
			drop(fixture.RED, dataplane.ReasonMalformed)},
		{"inner IHL past the frame", l.Swp3.Index, decap(edit(innerOK, 14, func(b []byte) { b[14] = 0x4f })),
			drop(fixture.RED, dataplane.ReasonMalformed)},
		{"inner IPv4 checksum wrong (RFC 1812 5.2.2)", l.Swp3.Index, decap(edit(innerOK, -1, func(b []byte) { b[14+ipv4Check] ^= 0x5a })),
			drop(fixture.RED, dataplane.ReasonBadChecksum)},
		{"inner IHL 15, checksum over the first 20 bytes only", l.Swp3.Index, decap(ihl15(t, innerOK)),
			drop(fixture.RED, dataplane.ReasonBadChecksum)},
		{"access IPv4 checksum wrong", l.Swp10.Index, edit(access, -1, func(b []byte) { b[accessIP+ipv4Check] ^= 0x5a }),
			drop(fixture.RED, dataplane.ReasonBadChecksum)},
		{"inner TTL 0: time exceeded back in VXLAN", l.Swp3.Index, ttl0,
			want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonTTL,
				out: answerBorder04(t, l, fixture.RedGateway, fixture.ICMP{Type: 11}, ttl0[50:], fixture.Site2RedVNI)}},
		{"access IPv4 options to a host behind BLUE's gateway: routed in RED, no route, the options quoted in the unreachable", l.Swp10.Index,
			options, want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonNoRoute,
				out: answerHost(t, l, fixture.RedGateway, fixture.ICMP{Type: 3}, options)}},
		{"access VLAN tag: the kernel's", l.Swp10.Index, tagged(t, access), toKernel},
		{"access ARP: the kernel's", l.Swp10.Index, arpFrame(t, l.Swp10.HardwareAddr), toKernel},
		{"access IPv6 to no route of RED's: dropped, never the kernel's", l.Swp10.Index, ipv6Frame(t, l.Swp10.HardwareAddr), drop(fixture.RED, dataplane.ReasonNoRoute)},
		{"access IHL below 5", l.Swp10.Index, edit(access, accessIP, func(b []byte) { b[accessIP] = 0x44 }), drop(fixture.RED, dataplane.ReasonMalformed)},
		{"runt: Ethernet header only, access", l.Swp10.Index, access[:14], drop(fixture.RED, dataplane.ReasonMalformed)},
		{"runt: IPv4 Ethernet header only, uplink: counted", l.Swp3.Index, decap(innerOK)[:14], drop(0, dataplane.ReasonMalformed)},
		{"jumbo to a remote VTEP over a 1500 underlay", l.Swp10.Index,
			fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 64, Payload: make([]byte, 3000)}),
			drop(fixture.RED, dataplane.ReasonMTU)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, l, tt.ingress, tt.frame, tt.want) })
	}
}

// TestForwardedOddities: inner packets a router must forward even though
// they are unusual: IP options (carried as they are) and fragments (hashed
// on addresses only, so all fragments of a datagram take one path).
func TestForwardedOddities(t *testing.T) {
	l := fixture.New(t)
	m := l.Model()
	flow := fixture.Flow{Src: a("192.168.20.110"), Dst: a("192.168.2.10"), SrcPort: 7, DstPort: 9, TTL: 64, Payload: []byte("payload")}
	for _, tc := range []struct {
		name  string
		inner []byte
	}{
		{"inner IPv4 options", withOptions(t, fixture.RouterMAC, fixture.Border04MAC, flow)},
		{"inner first fragment", fragment(t, flow, 0x2000)},
		{"inner later fragment", fragment(t, flow, 0x0010)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := fromBorder04(t, l, fixture.RedVNI, tc.inner)
			v := m.Forward(l.Swp3.Index, frame)
			if v.Reason != dataplane.ReasonFwdRemote {
				t.Fatalf("model says %v, want forward-remote", v.Reason)
			}
			expect(t, l, l.Swp3.Index, frame, want{action: v.Action, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote, out: v.Out})
		})
	}
	// All fragments of one datagram hash alike, whatever their offset.
	first, later := fragment(t, flow, 0x2000), fragment(t, flow, 0x0010)
	if dataplane.FlowHash(first[14:]) != dataplane.FlowHash(later[14:]) {
		t.Error("fragments of one datagram hash differently")
	}
}

// ihl15 makes an inner frame's IPv4 header claim 40 bytes of options (the
// payload read as options), with a checksum that covers only the first 20
// bytes, as a sender that ignores IHL would compute it.
func ihl15(t *testing.T, frame []byte) []byte {
	t.Helper()
	c := append([]byte(nil), frame...)
	for len(c) < 14+60+8 {
		c = append(c, 0xa5)
	}
	ip := c[14:]
	ip[0] = 0x4f
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[ipv4Check], ip[ipv4Check+1] = 0, 0
	binary.BigEndian.PutUint16(ip[ipv4Check:], ^onesSum(ip[:20]))
	return c
}

func fixIPv4Checksum(ip []byte) {
	hlen := int(ip[0]&0x0f) * 4
	if hlen < 20 || hlen > len(ip) {
		hlen = 20
	}
	ip[ipv4Check], ip[ipv4Check+1] = 0, 0
	binary.BigEndian.PutUint16(ip[ipv4Check:], ^onesSum(ip[:hlen]))
}

func build(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withOptions is flow with a 4-byte IPv4 option (NOP x3 + EOL).
func withOptions(t *testing.T, dst, src []byte, f fixture.Flow) []byte {
	ip := &layers.IPv4{Version: 4, TTL: f.TTL, Protocol: layers.IPProtocolUDP, SrcIP: f.Src.AsSlice(), DstIP: f.Dst.AsSlice(),
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	udp := &layers.UDP{SrcPort: layers.UDPPort(f.SrcPort), DstPort: layers.UDPPort(f.DstPort)}
	udp.SetNetworkLayerForChecksum(ip)
	return build(t, &layers.Ethernet{DstMAC: dst, SrcMAC: src, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(f.Payload))
}

func outerWithOptions(t *testing.T, l *fixture.Leaf, inner []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: fixture.Border04.AsSlice(), DstIP: fixture.VTEP.AsSlice(),
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	udp := &layers.UDP{SrcPort: 50000, DstPort: 4789}
	udp.SetNetworkLayerForChecksum(ip)
	return build(t, &layers.Ethernet{DstMAC: l.Swp3.HardwareAddr, SrcMAC: fixture.DCIMAC, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, &layers.VXLAN{ValidIDFlag: true, VNI: fixture.RedVNI}, gopacket.Payload(inner))
}

// fragment is flow as an IPv4 fragment with the given flags/offset word.
func fragment(t *testing.T, f fixture.Flow, flagsOffset uint16) []byte {
	b := fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, f)
	binary.BigEndian.PutUint16(b[14+6:], flagsOffset)
	fixIPv4Checksum(b[14:])
	return b
}

// tagged inserts an 802.1Q tag (VLAN 100) after the MACs.
func tagged(t *testing.T, frame []byte) []byte {
	out := append([]byte(nil), frame[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 100)
	return append(out, frame[12:]...)
}

func ipv6Frame(t *testing.T, dst []byte) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: a("2001:db8::1").AsSlice(), DstIP: a("2001:db8::2").AsSlice()}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	udp.SetNetworkLayerForChecksum(ip)
	return build(t, &layers.Ethernet{DstMAC: dst, SrcMAC: fixture.HostRedMAC, EthernetType: layers.EthernetTypeIPv6}, ip, udp, gopacket.Payload("v6"))
}

func arpFrame(t *testing.T, dst []byte) []byte {
	return build(t, &layers.Ethernet{DstMAC: dst, SrcMAC: fixture.HostRedMAC, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: fixture.HostRedMAC, SourceProtAddress: fixture.HostRed.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: a("192.168.100.1").AsSlice()})
}
