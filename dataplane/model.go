package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
)

// Model is the forwarding decision written as plain Go over plain tables:
// the reference the XDP program is held to (tests and fuzzing compare the
// two on the same frames). It is written from the specification, not from
// the C, and is far too slow for the data path.
type Model struct {
	VTEPs     map[netip.Addr]bool
	Ifaces    map[int]ModelIface
	VRFs      map[VRFID]VRF
	Routes    map[VRFID][]Route
	Neighbors map[ModelNeighborKey]Neighbor
	// Underlay is the kernel's view towards each remote VTEP; a VTEP that
	// is missing has no underlay route.
	Underlay map[netip.Addr]ModelUnderlay
	// Hops are the underlay next hops the agent resolved, which the
	// program takes before asking the kernel (Underlay), while they are
	// live (nil when they are not).
	Hops map[netip.Addr]UnderlayHop
}

// ModelIface is an attached interface.
type ModelIface struct {
	Uplink bool
	VRF    VRFID // access interfaces
	MAC    net.HardwareAddr
	MTU    int
}

// ModelNeighborKey indexes Model.Neighbors.
type ModelNeighborKey struct {
	VRF  VRFID
	Addr netip.Addr
}

// ModelUnderlay is the result of the kernel's FIB lookup towards a VTEP.
type ModelUnderlay struct {
	Ifindex  int
	SrcMAC   net.HardwareAddr
	DstMAC   net.HardwareAddr
	MTU      int  // of the egress route
	Resolved bool // the next hop has a neighbour entry
}

// XDP actions.
const (
	XDPDrop     = 1
	XDPPass     = 2
	XDPTx       = 3
	XDPRedirect = 4
)

// Verdict is what happens to one frame.
type Verdict struct {
	Action  int
	Reason  Reason
	VRF     VRFID  // counted under
	Ifindex int    // egress, for XDPTx and XDPRedirect
	Out     []byte // the frame as it leaves, for XDPTx and XDPRedirect
	Leak    Leak   // the leak matrix's cell it is counted in, when forwarded
}

const (
	ethLen    = 14
	ipLen     = 20
	ip6Len    = 40
	udpLen    = 8
	vxlanLen  = 8
	encapLen  = ethLen + ipLen + udpLen + vxlanLen
	vxlanPort = 4789
)

// Forward decides the fate of frame arriving on ingress.
func (m *Model) Forward(ingress int, frame []byte) Verdict {
	ifc, ok := m.Ifaces[ingress]
	if !ok {
		return Verdict{Action: XDPPass, Reason: ReasonPass}
	}
	if ifc.Uplink {
		return m.fromUplink(ingress, ifc, frame)
	}
	return m.fromAccess(ingress, ifc, frame)
}

func pass() Verdict { return Verdict{Action: XDPPass, Reason: ReasonPass} }

func drop(vrf VRFID, r Reason) Verdict { return Verdict{Action: XDPDrop, Reason: r, VRF: vrf} }

func (m *Model) fromUplink(ingress int, ifc ModelIface, f []byte) Verdict {
	// Outer headers: anything but VXLAN to our VTEP is the kernel's.
	if len(f) < ethLen || binary.BigEndian.Uint16(f[12:]) != 0x0800 || !bytes.Equal(f[0:6], ifc.MAC) {
		return pass()
	}
	ip := f[ethLen:]
	if len(ip) < ipLen {
		return drop(0, ReasonMalformed) // IPv4 to us, its header cut
	}
	if ip[0] != 0x45 || ip[9] != 17 || isFragment(ip) {
		return pass()
	}
	if !m.VTEPs[netip.AddrFrom4([4]byte(ip[16:20]))] {
		return pass()
	}
	udp := ip[ipLen:]
	if len(udp) < udpLen {
		return drop(0, ReasonMalformed) // to our VTEP, its UDP header cut
	}
	if binary.BigEndian.Uint16(udp[2:]) != vxlanPort {
		return pass()
	}
	vx := udp[udpLen:]
	if len(vx) < vxlanLen {
		return drop(0, ReasonMalformed)
	}
	if binary.BigEndian.Uint32(vx[0:]) != 0x08000000 || vx[7] != 0 {
		return drop(0, ReasonBadVXLAN)
	}
	vni := binary.BigEndian.Uint32(vx[4:]) >> 8
	var vrf VRF
	found := false
	for _, v := range m.VRFs {
		if v.VNI == vni {
			vrf, found = v, true
		}
	}
	if !found {
		return drop(0, ReasonUnknownVNI)
	}
	inner := vx[vxlanLen:]
	if len(inner) < ethLen {
		return drop(vrf.ID, ReasonMalformed)
	}
	if !bytes.Equal(inner[0:6], vrf.RouterMAC) {
		return drop(vrf.ID, ReasonBadRouterMAC)
	}
	if binary.BigEndian.Uint16(inner[12:]) == 0x86dd {
		return m.classify6(ingress, vrf.ID, vrf, true, f, encapLen)
	}
	if binary.BigEndian.Uint16(inner[12:]) != 0x0800 {
		return drop(vrf.ID, ReasonUnsupported)
	}
	if !validIPv4(inner[ethLen:]) {
		return drop(vrf.ID, ReasonMalformed)
	}
	if !checksumOK(inner[ethLen:]) {
		return drop(vrf.ID, ReasonBadChecksum)
	}
	return m.route(ingress, vrf, f, encapLen)
}

func (m *Model) fromAccess(ingress int, ifc ModelIface, f []byte) Verdict {
	if len(f) < ethLen {
		return pass()
	}
	ethertype := binary.BigEndian.Uint16(f[12:])
	if ethertype != 0x0800 && ethertype != 0x86dd {
		return pass()
	}
	vrf, configured := m.VRFs[ifc.VRF]
	rmac := vrf.RouterMAC
	if !configured {
		rmac = make(net.HardwareAddr, 6) // an unused VRF slot reads as zeros
	}
	if !bytes.Equal(f[0:6], ifc.MAC) && !bytes.Equal(f[0:6], rmac) {
		return pass()
	}
	if ethertype == 0x86dd {
		return m.classify6(ingress, ifc.VRF, vrf, configured, f, 0)
	}
	if !configured {
		return drop(ifc.VRF, ReasonNoVRF)
	}
	ip := f[ethLen:]
	if !validIPv4(ip) {
		return drop(vrf.ID, ReasonMalformed)
	}
	if !checksumOK(ip) {
		return drop(vrf.ID, ReasonBadChecksum)
	}
	return m.route(ingress, vrf, f, 0)
}

// classify6 takes an IPv6 packet (its Ethernet header at f[off:]) that
// came in VRF id (vrf, if configured) to routing, unless an address of it
// is not routed: on an access port (off 0) the link's own traffic (to
// link-local or multicast addresses, or from link-local or unspecified
// ones: ND, RS/RA, MLD, NUD probes) is the kernel's; in VXLAN it is
// dropped.
func (m *Model) classify6(ingress int, id VRFID, vrf VRF, configured bool, f []byte, off int) Verdict {
	ip := f[off+ethLen:]
	if !validIPv6(ip) {
		return drop(id, ReasonMalformed)
	}
	dst, src := netip.AddrFrom16([16]byte(ip[24:40])), netip.AddrFrom16([16]byte(ip[8:24]))
	if linkScoped(dst) || linkScoped(src) || src.IsUnspecified() {
		if off == 0 {
			return pass()
		}
		return drop(id, ReasonScope)
	}
	if !configured {
		return drop(id, ReasonNoVRF)
	}
	return m.route(ingress, vrf, f, off)
}

// linkScoped is fe80::/10 or ff00::/8.
func linkScoped(a netip.Addr) bool {
	b := a.As16()
	return b[0] == 0xff || b[0] == 0xfe && b[1]&0xc0 == 0x80
}

// validIPv6 is a header we can route: version 6, the payload within the
// frame. Extension headers are not looked at.
func validIPv6(ip []byte) bool {
	return len(ip) >= ip6Len && ip[0]>>4 == 6 && ip6Len+int(binary.BigEndian.Uint16(ip[4:])) <= len(ip)
}

// ICMPv6 (RFC 4443).
const (
	icmp6DestUnreach  = 1
	icmp6NoRoute      = 0
	icmp6PktTooBig    = 2
	icmp6TimeExceeded = 3
	icmp6QuoteMax     = 1232 // the error within the minimum MTU, 1280
)

// answer6 is answer for IPv6 (RFC 4443 2.4): the error quotes as much of
// the packet as keeps it within 1280 bytes, comes from the VRF's IPv6
// address, and is routed back in the VRF.
func (m *Model) answer6(ingress int, vrf VRF, f []byte, off int, r Reason, typ, code byte, mtu int) Verdict {
	dropped := drop(vrf.ID, r)
	inner := f[off:]
	ip := inner[ethLen:]
	if !vrf.ICMP.On() || !vrf.ICMP.Source6.IsValid() || !mayAnswer6(ip) {
		return dropped
	}
	quote := ip[:min(ip6Len+int(binary.BigEndian.Uint16(ip[4:])), icmp6QuoteMax)]
	e := make([]byte, ethLen+ip6Len+8, ethLen+ip6Len+8+len(quote))
	copy(e[0:6], inner[6:12])
	copy(e[6:12], inner[0:6])
	binary.BigEndian.PutUint16(e[12:], 0x86dd)
	eip := e[ethLen:]
	eip[0] = 0x60
	binary.BigEndian.PutUint16(eip[4:], uint16(8+len(quote)))
	eip[6], eip[7] = 58, 64
	copy(eip[8:24], vrf.ICMP.Source6.AsSlice())
	copy(eip[24:40], ip[8:24])
	icmp := eip[ip6Len:]
	icmp[0], icmp[1] = typ, code
	if typ == icmp6PktTooBig {
		binary.BigEndian.PutUint32(icmp[4:], uint32(mtu))
	}
	e = append(e, quote...)
	pseudo := append(append(append([]byte{}, eip[8:40]...), binary.BigEndian.AppendUint32(nil, uint32(8+len(quote)))...), 0, 0, 0, 58)
	binary.BigEndian.PutUint16(icmp[2:], ipChecksum2(append(pseudo, e[ethLen+ip6Len:]...)))

	return m.sendError(ingress, vrf, e, dropped)
}

// mayAnswer6 is RFC 4443 2.4 (e) as the program has it: no error about an
// ICMPv6 error, nor about a packet whose next header is an extension
// header (what follows is not looked at).
func mayAnswer6(ip []byte) bool {
	switch nh := ip[6]; nh {
	case 58:
		return binary.BigEndian.Uint16(ip[4:]) != 0 && len(ip) > ip6Len && ip[ip6Len] >= 128
	case 0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254:
		return false
	}
	return true
}

// route looks the inner packet (at f[off:]) up in vrf; a drop its source
// should hear of is answered with an ICMP error.
func (m *Model) route(ingress int, vrf VRF, f []byte, off int) Verdict {
	return m.forward(ingress, vrf, f, off, true)
}

// forward routes the IPv4 or IPv6 packet at f[off:]; answer says whether
// drops are answered (not for an error of our own), with ICMP or ICMPv6.
func (m *Model) forward(ingress int, vrf VRF, f []byte, off int, answer bool) Verdict {
	ip := f[off+ethLen:]
	dst, ttl := netip.AddrFrom4([4]byte(ip[16:20])), ip[8]
	noRoute, expired := [2]byte{icmpDestUnreach, icmpNetUnreach}, [2]byte{icmpTimeExceeded, icmpExcTTL}
	answerWith := m.answer
	if binary.BigEndian.Uint16(f[off+12:]) == 0x86dd {
		dst, ttl = netip.AddrFrom16([16]byte(ip[24:40])), ip[7]
		noRoute, expired = [2]byte{icmp6DestUnreach, icmp6NoRoute}, [2]byte{icmp6TimeExceeded, 0}
		answerWith = m.answer6
	}
	r, ok := m.lookup(vrf.ID, dst)
	unanswered := func(r Reason, typ, code byte, mtu int) Verdict {
		if !answer {
			return drop(vrf.ID, r)
		}
		return answerWith(ingress, vrf, f, off, r, typ, code, mtu)
	}
	switch {
	case !ok:
		return unanswered(ReasonNoRoute, noRoute[0], noRoute[1], 0)
	case r.Kind == RouteReceive && off > 0:
		return drop(vrf.ID, ReasonHostOverVXLAN) // the kernel has no device for the outer datagram
	case r.Kind == RouteReceive:
		return Verdict{Action: XDPPass, Reason: ReasonPassHost, VRF: vrf.ID}
	case r.Kind == RouteBlackhole:
		return drop(vrf.ID, ReasonBlackhole)
	case ttl <= 1:
		return unanswered(ReasonTTL, expired[0], expired[1], 0)
	case r.Kind == RouteRemote:
		return m.remote(ingress, vrf, r, f, off, unanswered)
	case r.Kind == RouteLocal:
		return m.local(ingress, vrf, r, f, off, dst, unanswered)
	}
	return drop(vrf.ID, ReasonBadNexthop)
}

// ICMP (RFC 792).
const (
	icmpDestUnreach  = 3
	icmpNetUnreach   = 0
	icmpFragNeeded   = 4
	icmpTimeExceeded = 11
	icmpExcTTL       = 0
	icmpQuoteData    = 8 // octets of data quoted after the packet's header
)

// answer is the fate of a packet dropped for reason r that its source is
// told of with an ICMP error (RFC 1812 4.3.2): the error, from the VRF's
// own address, is routed back in the VRF like any packet; the packet is
// still counted under r. No error when the VRF sends none, the packet may
// not be answered, or the error cannot be forwarded. (The rate limit is
// the program's; the model assumes a token.)
func (m *Model) answer(ingress int, vrf VRF, f []byte, off int, r Reason, typ, code byte, mtu int) Verdict {
	dropped := drop(vrf.ID, r)
	inner := f[off:]
	ip := inner[ethLen:]
	if !vrf.ICMP.On() || !vrf.ICMP.Source.IsValid() || !mayAnswer(ip) {
		return dropped
	}
	hlen := int(ip[0]&0x0f) * 4
	quote := ip[:hlen+min(int(binary.BigEndian.Uint16(ip[2:]))-hlen, icmpQuoteData)]

	e := make([]byte, ethLen+ipLen+8, ethLen+ipLen+8+len(quote))
	copy(e[0:6], inner[6:12])
	copy(e[6:12], inner[0:6])
	binary.BigEndian.PutUint16(e[12:], 0x0800)
	eip := e[ethLen:]
	eip[0] = 0x45
	eip[1] = ip[1]&0x1e | 0xc0 // as Linux: its TOS, network control precedence
	binary.BigEndian.PutUint16(eip[2:], uint16(ipLen+8+len(quote)))
	eip[8] = 64
	eip[9] = 1
	copy(eip[12:16], vrf.ICMP.Source.AsSlice())
	copy(eip[16:20], ip[12:16])
	binary.BigEndian.PutUint16(eip[10:], ipChecksum(eip[:ipLen]))
	icmp := eip[ipLen:]
	icmp[0], icmp[1] = typ, code
	binary.BigEndian.PutUint16(icmp[6:], uint16(mtu))
	e = append(e, quote...)
	binary.BigEndian.PutUint16(icmp[2:], ipChecksum2(e[ethLen+ipLen:]))

	return m.sendError(ingress, vrf, e, dropped)
}

// sendError routes e, the error about the packet dropped as dropped, in
// vrf: the packet's fate is the error's forwarding, counted under the
// packet's drop reason, or the drop itself if the error goes nowhere.
func (m *Model) sendError(ingress int, vrf VRF, e []byte, dropped Verdict) Verdict {
	v := m.forward(ingress, vrf, e, 0, false)
	if v.Reason != ReasonFwdRemote && v.Reason != ReasonFwdLocal {
		return dropped
	}
	v.Reason, v.Leak = dropped.Reason, Leak{}
	return v
}

// mayAnswer is RFC 1812 4.3.2.7: no error for a later fragment, a source
// that names no single host, a group destination, or an ICMP error (or a
// type unknown, as Linux has it).
func mayAnswer(ip []byte) bool {
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		return false
	}
	if src := ip[12]; src == 0 || src == 127 || src >= 224 || ip[16] >= 224 {
		return false
	}
	if ip[9] == 1 {
		hlen := int(ip[0]&0x0f) * 4
		if int(binary.BigEndian.Uint16(ip[2:])) <= hlen { // no type: padding is not the packet
			return false
		}
		switch t := ip[hlen]; {
		case t > 18, t == 3, t == 4, t == 5, t == 11, t == 12:
			return false
		}
	}
	return true
}

// ipChecksum2 is the Internet checksum of b (its checksum field zero).
func ipChecksum2(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// lookup is a longest-prefix match over the VRF's routes.
func (m *Model) lookup(vrf VRFID, dst netip.Addr) (Route, bool) {
	var best Route
	found := false
	for _, r := range m.Routes[vrf] {
		if r.Prefix.Contains(dst) && (!found || r.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// unanswered is how a path drops a packet its source should hear of.
type unanswered func(r Reason, typ, code byte, mtu int) Verdict

func (m *Model) remote(ingress int, vrf VRF, r Route, f []byte, off int, tooBig unanswered) Verdict {
	inner := f[off:]
	ip := inner[ethLen:]
	members, ok := canonicalRemotes(r.Remotes)
	if !ok {
		return drop(vrf.ID, ReasonBadNexthop)
	}
	v6 := binary.BigEndian.Uint16(inner[12:]) == 0x86dd
	hash, tos, df := FlowHash(ip), ip[1], v6 || dontFragment(ip)
	if v6 {
		hash, tos = FlowHash6(ip), ip[0]<<4|ip[1]>>4
	}
	nh := PickRemote(members, hash)
	u, routed := m.Underlay[nh.VTEP]
	if h, ok := m.Hops[nh.VTEP]; ok && len(h.Members) > 0 {
		p := h.Members[UnderlayPick(hash, h)]
		u, routed = ModelUnderlay{Ifindex: p.Ifindex, SrcMAC: p.SrcMAC, DstMAC: p.DstMAC, MTU: p.MTU, Resolved: true}, true
	}
	outerLen := len(inner) + ipLen + udpLen + vxlanLen
	switch {
	case !routed:
		return drop(vrf.ID, ReasonNoUnderlay)
	case outerLen > u.MTU && v6 && u.MTU > encapLen:
		return tooBig(ReasonMTU, icmp6PktTooBig, 0, u.MTU-encapLen)
	case outerLen > u.MTU && df && u.MTU > encapLen:
		return tooBig(ReasonMTU, icmpDestUnreach, icmpFragNeeded, u.MTU-encapLen) // the inner packet's limit
	case outerLen > u.MTU:
		return drop(vrf.ID, ReasonMTU) // no fragmenting here
	case !u.Resolved:
		return drop(vrf.ID, ReasonUnderlayNeigh)
	}
	out := make([]byte, encapLen, encapLen+len(inner))
	out = append(out, inner...)
	rewrite(out[encapLen:], nh.RouterMAC, vrf.RouterMAC)

	copy(out[0:6], u.DstMAC)
	copy(out[6:12], u.SrcMAC)
	binary.BigEndian.PutUint16(out[12:], 0x0800)
	oip := out[ethLen:]
	oip[0] = 0x45
	oip[1] = tos
	binary.BigEndian.PutUint16(oip[2:], uint16(outerLen))
	binary.BigEndian.PutUint16(oip[6:], 0x4000) // DF
	oip[8] = 64
	oip[9] = 17
	copy(oip[12:16], vrf.VTEP.AsSlice())
	copy(oip[16:20], nh.VTEP.AsSlice())
	binary.BigEndian.PutUint16(oip[10:], ipChecksum(oip[:ipLen]))
	udp := oip[ipLen:]
	binary.BigEndian.PutUint16(udp[0:], uint16(49152|(hash>>16)&0x3fff))
	binary.BigEndian.PutUint16(udp[2:], vxlanPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(inner)+udpLen+vxlanLen))
	vx := udp[udpLen:]
	binary.BigEndian.PutUint32(vx[0:], 0x08000000)
	binary.BigEndian.PutUint32(vx[4:], nh.VNI<<8)
	v := out2(vrf.ID, ReasonFwdRemote, ingress, u.Ifindex, out)
	v.Leak = Leak{From: vrf.ID, VNI: nh.VNI}
	return v
}

func (m *Model) local(ingress int, vrf VRF, r Route, f []byte, off int, dst netip.Addr, tooBig unanswered) Verdict {
	n, ok := m.Neighbors[ModelNeighborKey{VRF: r.HostVRF, Addr: dst}]
	if !ok {
		return drop(vrf.ID, ReasonNoNeighbor)
	}
	egress, ok := m.Ifaces[n.Ifindex]
	if !ok {
		return drop(vrf.ID, ReasonError)
	}
	out := bytes.Clone(f[off:])
	v6 := binary.BigEndian.Uint16(out[12:]) == 0x86dd
	if len(out) > egress.MTU+ethLen && v6 {
		return tooBig(ReasonMTU, icmp6PktTooBig, 0, egress.MTU)
	}
	if len(out) > egress.MTU+ethLen && dontFragment(out[ethLen:]) {
		return tooBig(ReasonMTU, icmpDestUnreach, icmpFragNeeded, egress.MTU)
	}
	if len(out) > egress.MTU+ethLen {
		return drop(vrf.ID, ReasonMTU)
	}
	rewrite(out, n.MAC, n.SrcMAC)
	v := out2(vrf.ID, ReasonFwdLocal, ingress, n.Ifindex, out)
	v.Leak = Leak{From: vrf.ID, Local: true, HostVRF: r.HostVRF}
	return v
}

func out2(vrf VRFID, r Reason, ingress, egress int, out []byte) Verdict {
	action := XDPRedirect
	if egress == ingress {
		action = XDPTx
	}
	return Verdict{Action: action, Reason: r, VRF: vrf, Ifindex: egress, Out: out}
}

// rewrite routes an Ethernet+IPv4 frame one hop: new MACs, TTL - 1 with
// the checksum updated incrementally (RFC 1624, as the kernel does); an
// IPv6 one's hop limit - 1.
func rewrite(frame []byte, dst, src net.HardwareAddr) {
	copy(frame[0:6], dst)
	copy(frame[6:12], src)
	ip := frame[ethLen:]
	if binary.BigEndian.Uint16(frame[12:]) == 0x86dd {
		ip[7]--
		return
	}
	check := uint32(binary.LittleEndian.Uint16(ip[10:])) + 0x0001 // htons(0x0100) as stored
	if check >= 0xffff {
		check++
	}
	binary.LittleEndian.PutUint16(ip[10:], uint16(check))
	ip[8]--
}

func dontFragment(ip []byte) bool { return ip[6]&0x40 != 0 }

func isFragment(ip []byte) bool {
	return binary.BigEndian.Uint16(ip[6:])&0x3fff != 0
}

// validIPv4 is a header we can route: version 4, options within the frame,
// total length covering the header and within the frame.
func validIPv4(ip []byte) bool {
	if len(ip) < ipLen || ip[0]>>4 != 4 || ip[0]&0x0f < 5 {
		return false
	}
	hlen := int(ip[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	return tot >= hlen && tot <= len(ip)
}

// checksumOK says whether a valid IPv4 header, options included, carries
// its own checksum (RFC 1812 5.2.2: a router verifies it).
func checksumOK(ip []byte) bool {
	var sum uint32
	for i := 0; i < int(ip[0]&0x0f)*4; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:])) // the checksum too: all ones when right
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		if i != 10 {
			sum += uint32(binary.BigEndian.Uint16(h[i:]))
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// FlowHash is the inner packet's hash (ip is the IPv4 header onwards): the
// 5-tuple of TCP, UDP and SCTP, the 3-tuple of fragments and the rest.
func FlowHash(ip []byte) uint32 {
	word := func(b []byte) uint32 { return binary.LittleEndian.Uint32(b) } // as the program loads it
	proto := uint32(ip[9])
	var ports uint32
	hlen := int(ip[0]&0x0f) * 4
	if !isFragment(ip) && (proto == 6 || proto == 17 || proto == 132) && len(ip) >= hlen+4 {
		ports = word(ip[hlen:])
	}
	return mix32(word(ip[12:]) ^ mix32(word(ip[16:])^mix32(ports^proto)))
}

// FlowHash6 is FlowHash of an IPv6 packet (ip is its header onwards): the
// addresses folded to 32 bits each, and the ports of TCP, UDP and SCTP
// or else the flow label (extension headers are not walked).
func FlowHash6(ip []byte) uint32 {
	word := func(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
	fold := func(b []byte) uint32 { return word(b[0:]) ^ word(b[4:]) ^ word(b[8:]) ^ word(b[12:]) }
	next := uint32(ip[6])
	var ports uint32
	switch {
	case next == 6 || next == 17 || next == 132:
		if len(ip) >= ip6Len+4 {
			ports = word(ip[ip6Len:])
		}
	default:
		ports = word(ip[0:]) & 0xffff0f00 // the flow label, as the program masks it
	}
	return mix32(fold(ip[8:24]) ^ mix32(fold(ip[24:40])^mix32(ports^next)))
}

// PickRemote is the member a flow hash selects from a group's members.
func PickRemote(members []Remote, hash uint32) Remote {
	nhs, _, err := canonical(members)
	if err != nil {
		return Remote{}
	}
	return remoteOf(nhs[slotTable(nhs)[hash&(NHGSlots-1)]])
}

// canonicalRemotes orders and deduplicates members the way the data path
// stores them, so slot indexes mean the same member on both sides.
func canonicalRemotes(members []Remote) ([]Remote, bool) {
	nhs, _, err := canonical(members)
	if err != nil {
		return nil, false
	}
	out := make([]Remote, len(nhs))
	for i, nh := range nhs {
		out[i] = remoteOf(nh)
	}
	return out, true
}

func remoteOf(nh xleafNexthop) Remote {
	return Remote{VTEP: addrFromBe32(nh.Vtep), VNI: nh.Vni, RouterMAC: net.HardwareAddr(bytes.Clone(nh.Rmac[:]))}
}
