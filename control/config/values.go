package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Value parsers: each error says what was expected, the caller adds where.

// maxVNI is the largest VNI: the VXLAN header carries 24 bits.
const maxVNI = 1<<24 - 1

// maxIfName is the longest Linux interface (and so VRF) name, IFNAMSIZ-1.
const maxIfName = 15

func parseOnOff(s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("enable %q: expected on or off", s)
}

// parseUint parses a decimal number in lo..hi; what names it in errors.
func parseUint(what, s string, lo, hi uint64) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: expected a number in %d..%d", what, s, lo, hi)
	}
	return n, nil
}

func parseASN(s string) (uint32, error) {
	n, err := parseUint("autonomous-system", s, 1, 1<<32-1)
	return uint32(n), err
}

func parseVNI(s string) (uint32, error) {
	n, err := parseUint("vni", s, 1, maxVNI)
	return uint32(n), err
}

// parseRouterID parses a BGP router-id: a 32-bit identifier written as an
// IPv4 address, not 0.0.0.0.
func parseRouterID(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("router-id %q: expected an IPv4 address such as 10.10.10.10", s)
	}
	return a, nil
}

// parseRouteTarget parses ASN:N or ANY:N. The ASN and the value share six
// bytes: a two-octet ASN leaves four for the value, a four-octet ASN two.
func parseRouteTarget(s string) (RouteTarget, error) {
	bad := func(why string) (RouteTarget, error) {
		return RouteTarget{}, fmt.Errorf("route-target %q: %s", s, why)
	}
	admin, local, ok := strings.Cut(s, ":")
	if !ok {
		return bad("expected ASN:N, A.B.C.D:N or ANY:N")
	}
	if a, err := netip.ParseAddr(admin); err == nil {
		v, err := strconv.ParseUint(local, 10, 16)
		if !a.Is4() || err != nil {
			return bad("an IPv4 address leaves two octets: expected A.B.C.D:N with N in 0..65535")
		}
		return RouteTarget{Addr: a, Value: uint32(v)}, nil
	}
	if strings.EqualFold(admin, "any") {
		v, err := strconv.ParseUint(local, 10, 32)
		if err != nil {
			return bad("expected ANY:N with N in 0..4294967295")
		}
		return RouteTarget{Any: true, Value: uint32(v)}, nil
	}
	asn, err := strconv.ParseUint(admin, 10, 32)
	if err != nil {
		return bad("expected ASN:N, A.B.C.D:N or ANY:N with ASN in 0..4294967295")
	}
	limit := uint64(1<<32 - 1)
	if asn > 1<<16-1 {
		limit = 1<<16 - 1
	}
	v, err := strconv.ParseUint(local, 10, 64)
	if err != nil || v > limit {
		if limit == 1<<16-1 {
			return bad("a four-octet ASN leaves two octets: expected N in 0..65535")
		}
		return bad("expected ASN:N with N in 0..4294967295")
	}
	return RouteTarget{ASN: uint32(asn), Value: uint32(v)}, nil
}

func (rt RouteTarget) String() string {
	if rt.Any {
		return fmt.Sprintf("ANY:%d", rt.Value)
	}
	return fmt.Sprintf("%d:%d", rt.ASN, rt.Value)
}

// parseNetwork parses an IPv4 route (aggregate-route, network): the
// address must be the network's own, with no host bits set.
func parseNetwork(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %q: expected an IPv4 prefix such as 192.168.1.0/24", what, s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s %q: host bits set, expected %s", what, s, m)
	}
	return p, nil
}

// parseNetwork6 is parseNetwork for an IPv6 route.
func parseNetwork6(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s %q: expected an IPv6 prefix such as 2001:db8:1::/48", what, s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s %q: host bits set, expected %s", what, s, m)
	}
	return p, nil
}

// parseIfAddr parses an interface address: the host's address and its
// subnet, so host bits are the point. An IPv6 address must be one that is
// routed: a port's link-local address is the kernel's own.
func parseIfAddr(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: expected an address with its prefix length, such as 192.168.2.1/24 or 2001:db8:2::1/64", s)
	}
	if a := p.Addr(); a.Is6() && (a.Is4In6() || !a.IsGlobalUnicast()) {
		return netip.Prefix{}, fmt.Errorf("address %q: not a routed IPv6 address (link-local, multicast and mapped addresses are not configured here)", s)
	}
	return p, nil
}

func parseRemoteAS(s string) (RemoteAS, error) {
	switch s {
	case "external":
		return RemoteAS{Kind: ASExternal}, nil
	case "internal":
		return RemoteAS{Kind: ASInternal}, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return RemoteAS{}, fmt.Errorf("remote-as %q: expected external, internal or an ASN in 1..4294967295", s)
	}
	return RemoteAS{Kind: ASNumber, ASN: uint32(n)}, nil
}

// oneOf checks s against the values a key takes.
func oneOf(what, s string, values ...string) error {
	for _, v := range values {
		if s == v {
			return nil
		}
	}
	return fmt.Errorf("%s %q: expected %s", what, s, orList(values))
}

func orList(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// checkIfName checks an interface or VRF name the way the kernel does.
func checkIfName(what, s string) error {
	if s == "" || len(s) > maxIfName || s == "." || s == ".." || strings.ContainsAny(s, "/: \t") {
		return fmt.Errorf("%s name %q: expected 1..%d characters, no '/', ':' or spaces", what, s, maxIfName)
	}
	return nil
}

// checkName checks a route-map or peer-group name.
func checkName(what, s string) error {
	if s == "" || strings.ContainsAny(s, " \t") {
		return fmt.Errorf("%s name %q: expected a word", what, s)
	}
	return nil
}

// checkHostname checks an RFC 1123 host name.
func checkHostname(s string) error {
	bad := fmt.Errorf("hostname %q: expected letters, digits, '-' and '.', labels of 1..63 characters", s)
	if s == "" || len(s) > 253 {
		return bad
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return bad
			}
		}
	}
	return nil
}
