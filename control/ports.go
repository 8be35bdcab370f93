package control

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/dataplane"
)

// The ports part: which ports run the data path and in which role, and
// the addresses the configuration gives them.

// roleKind is what a port does in the data path.
type roleKind uint8

const (
	// roleStale: found attached at start, by an earlier run; the first
	// apply gives it its configured role or detaches it.
	roleStale roleKind = iota
	roleUplink
	roleAccess
)

// portRole is a port's role; an access port's VRF is part of it (a VRF
// replaced under the same name is a new role).
type portRole struct {
	kind roleKind
	vrf  string          // roleAccess
	id   dataplane.VRFID // roleAccess
}

// ports attaches the data path to ports and keeps it there.
type ports struct {
	log *slog.Logger
	dp  PortTable

	// write serialises apply and reconcile, which attach and detach; it
	// is held over that I/O. Readers take only mu.
	write sync.Mutex
	mu    sync.Mutex
	roles map[string]portRole          // attached ports
	ifcs  map[string]*config.Interface // configured ports: addresses, subnets
}

func newPorts(log *slog.Logger, dp PortTable) *ports {
	return &ports{log: log, dp: dp, roles: map[string]portRole{}, ifcs: map[string]*config.Interface{}}
}

// adopt records the ports an earlier run left attached, as stale.
func (p *ports) adopt() (found bool, err error) {
	attached, err := p.dp.Attached()
	if err != nil {
		return false, fmt.Errorf("read attached ports: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, port := range attached {
		if _, ok := p.roles[port]; !ok {
			p.roles[port] = portRole{kind: roleStale}
		}
	}
	return len(attached) > 0, nil
}

// roles is the role of every port cfg uses: tenant ports of its VRFs,
// and the fabric ports of its BGP neighbours (a numbered neighbour's is
// the port the kernel routes its address through).
func wantedRoles(cfg *config.Config, vrfs *vrfSet) map[string]portRole {
	want := map[string]portRole{}
	for name, ifc := range cfg.Interfaces {
		if v := vrfs.get(ifc.VRF); v != nil {
			want[name] = portRole{kind: roleAccess, vrf: ifc.VRF, id: v.ID}
		}
	}
	for _, n := range cfg.Default.Neighbors {
		switch n.Type {
		case config.Unnumbered:
			want[n.Name] = portRole{kind: roleUplink} // BGP unnumbered runs over a fabric port
		case config.Numbered:
			if port := portTowards(n.Name); port != "" {
				want[port] = portRole{kind: roleUplink}
			}
		}
	}
	return want
}

// apply attaches the ports of want in their roles, gives configured ports
// their addresses, and detaches the rest. It returns the ports whose role
// ended (their hosts go), also when it fails part-way.
func (p *ports) apply(want map[string]portRole, ifcs map[string]*config.Interface) (ended []string, err error) {
	p.write.Lock()
	defer p.write.Unlock()
	p.mu.Lock()
	have := maps.Clone(p.roles)
	p.ifcs = ifcs
	p.mu.Unlock()
	for port, role := range have {
		if w, ok := want[port]; ok && (w == role || role.kind == roleStale) {
			// Unchanged; or left attached by an earlier run and wanted:
			// attach below takes it over in place (the new program swapped
			// in, its entry rewritten), without a moment detached.
			continue
		}
		if err := p.dp.Detach(port); err != nil {
			p.log.Warn("detach", "port", port, "err", err)
		}
		ended = append(ended, port)
		p.set(port, nil)
	}
	for _, port := range slices.Sorted(maps.Keys(want)) {
		role := want[port]
		if have[port] == role {
			continue
		}
		if err := ensureAddresses(port, ifcs[port]); err != nil {
			return ended, err
		}
		if err := p.attach(port, role); err != nil {
			return ended, err
		}
		p.set(port, &role)
	}
	if lo := ifcs["lo"]; lo != nil {
		if err := ensureAddresses("lo", lo); err != nil {
			return ended, err
		}
	}
	return ended, nil
}

func (p *ports) set(port string, role *portRole) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if role == nil {
		delete(p.roles, port)
	} else {
		p.roles[port] = *role
	}
}

// attach runs the data path on port in role. Attaching a port as it is
// changes nothing.
func (p *ports) attach(port string, role portRole) error {
	switch role.kind {
	case roleUplink:
		return p.dp.AttachUplink(port)
	case roleAccess:
		return p.dp.AttachAccess(port, role.id)
	}
	return fmt.Errorf("attach %s: no role", port)
}

// reconcile puts back what a port lost: its addresses, and the program
// and the data path's entry for it (a port created anew has neither).
func (p *ports) reconcile() {
	p.write.Lock()
	defer p.write.Unlock()
	p.mu.Lock()
	roles, ifcs := maps.Clone(p.roles), p.ifcs
	p.mu.Unlock()
	for port, role := range roles {
		if role.kind == roleStale {
			continue
		}
		if _, err := netlink.LinkByName(port); err != nil {
			continue // gone: its return is an event
		}
		if err := setAddresses(port, ifcs[port]); err != nil {
			p.log.Warn("reconcile port addresses", "port", port, "err", err)
		}
		if err := p.attach(port, role); err != nil {
			p.log.Warn("reconcile port attachment", "port", port, "err", err)
		}
	}
	if err := setAddresses("lo", ifcs["lo"]); err != nil {
		p.log.Warn("reconcile loopback addresses", "err", err)
	}
}

// role is an attached port's role.
func (p *ports) role(port string) (portRole, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.roles[port]
	return r, ok
}

// uses says whether xleafd attaches or configures port.
func (p *ports) uses(port string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, attached := p.roles[port]
	return attached || p.ifcs[port] != nil || port == "lo"
}

// onSubnet says whether ip is a host inside one of port's configured
// subnets (not the port's own address).
func (p *ports) onSubnet(port string, ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ifc := p.ifcs[port]; ifc != nil {
		for _, s := range ifc.Addresses {
			if s.Masked().Contains(ip) && s.Addr() != ip {
				return true
			}
		}
	}
	return false
}

// hostPort is the tenant port of vrf whose subnet holds ip ("" if none).
func (p *ports) hostPort(vrf string, ip netip.Addr) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port, ifc := range p.ifcs {
		if ifc.VRF != vrf {
			continue
		}
		for _, s := range ifc.Addresses {
			if s.Masked().Contains(ip) {
				return port
			}
		}
	}
	return ""
}

// connected is each VRF's subnets, from its ports.
func connected(cfg *config.Config) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, ifc := range cfg.Interfaces {
		if cfg.VRFs[ifc.VRF] != nil {
			out[ifc.VRF] = append(out[ifc.VRF], ifc.Addresses...)
		}
	}
	return out
}

// ensureAddresses gives a port the addresses the configuration names, and
// brings it up.
func ensureAddresses(port string, ifc *config.Interface) error {
	if ifc == nil || len(ifc.Addresses) == 0 {
		return nil
	}
	if err := setAddresses(port, ifc); err != nil {
		return err
	}
	l, err := netlink.LinkByName(port)
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("interface %s: up: %w", port, err)
	}
	return nil
}

// setAddresses adds those of the configured addresses a port lacks.
func setAddresses(port string, ifc *config.Interface) error {
	if ifc == nil || len(ifc.Addresses) == 0 {
		return nil
	}
	l, err := netlink.LinkByName(port)
	if err != nil {
		return fmt.Errorf("interface %s: %w", port, err)
	}
	have, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("interface %s: addresses: %w", port, err)
	}
	for _, p := range ifc.Addresses {
		if slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IPNet.String() == p.String() }) {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if err := netlink.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("interface %s: address %v: %w", port, p, err)
		}
	}
	return nil
}

// systemMAC is the router MAC when none is configured: eth0's, as on a
// Cumulus switch, else the first configured port's.
func systemMAC(cfg *config.Config) (net.HardwareAddr, error) {
	names := []string{"eth0"}
	names = append(names, slices.Sorted(maps.Keys(cfg.Interfaces))...)
	for _, name := range names {
		if ifc, err := net.InterfaceByName(name); err == nil && len(ifc.HardwareAddr) == 6 {
			return ifc.HardwareAddr, nil
		}
	}
	return nil, errors.New("no system MAC: no eth0 and no configured port with a MAC; set one with --router-mac")
}

// portTowards is the interface the kernel would use to reach addr: the
// fabric port of a numbered neighbour ("" if the address is our own).
func portTowards(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 {
		return ""
	}
	l, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil || l.Attrs().Flags&net.FlagLoopback != 0 {
		return ""
	}
	return l.Attrs().Name
}
