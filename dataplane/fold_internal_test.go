package dataplane

import (
	"maps"
	"net"
	"net/netip"
	"testing"

	"github.com/xleaf/xleaf/test/netns"
)

// TestVNIIndexFollows: vni_index, where a VXLAN packet finds its VRF
// without hashing, names at each position the VRF of the lowest VNI there
// that terminates at a local VTEP, through every change of VRFs and VTEPs,
// VNIs that share a position, and across a restart (it is not pinned: Open
// builds it).
func TestVNIIndexFollows(t *testing.T) {
	netns.Root(t)
	pin := netns.PinPath(t)
	d, err := Open(Options{PinPath: pin, RoutesPerVRF: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	rmac := net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x06}
	a, b := netip.MustParseAddr("10.10.10.10"), netip.MustParseAddr("10.10.10.11")
	vrf := func(id VRFID, vni uint32, vtep netip.Addr) VRF {
		return VRF{ID: id, VNI: vni, RouterMAC: rmac, VTEP: vtep}
	}
	// What the positions must say, from the API calls alone.
	vrfs := map[VRFID]VRF{}
	vteps := map[netip.Addr]bool{}
	check := func(when string) {
		t.Helper()
		want := map[int]uint32{}
		low := map[int]uint32{}
		for id, v := range vrfs {
			pos := int(v.VNI % vniIndexSize)
			if vteps[v.VTEP] && (low[pos] == 0 || v.VNI < low[pos]) {
				want[pos], low[pos] = uint32(id), v.VNI
			}
		}
		got := map[int]uint32{}
		for pos := range vniIndexSize {
			if id := d.vniIndex.loadValue(pos); id != 0 {
				got[pos] = id
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: vni_index = %v, want %v", when, got, want)
		}
		if len(want) == 0 && when != "empty" && when != "no local VTEP" {
			t.Errorf("%s: nothing to check", when)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	setVRF := func(v VRF) { t.Helper(); must(d.SetVRF(v)); vrfs[v.ID] = v }
	check("empty")
	setVRF(vrf(1, 4001, a))
	check("no local VTEP")
	must(d.AddVTEP(a))
	vteps[a] = true
	check("a VRF, then its VTEP")
	setVRF(vrf(2, 4002, a))
	check("a VTEP, then a VRF")
	setVRF(vrf(4, 4001+vniIndexSize, a)) // RED's position, a higher VNI
	check("a VNI at a taken position")
	setVRF(vrf(5, 4002+vniIndexSize, b)) // at a VTEP not ours
	check("a VRF at another VTEP")
	must(d.AddVTEP(b))
	vteps[b] = true
	check("two VTEPs")
	setVRF(vrf(1, 4011, a))
	check("a VRF's VNI changed, its position to the other VNI")
	must(d.DeleteVRF(2))
	delete(vrfs, 2)
	check("a VRF deleted")
	must(d.DeleteVTEP(a))
	delete(vteps, a)
	check("a VTEP deleted")
	setVRF(vrf(3, 4003, b))
	d.Close()
	if d, err = Open(Options{PinPath: pin, RoutesPerVRF: 64}); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
}

// TestIfaceIndexFollows: iface_index, the array the program finds an
// interface in first, says what ifaces says, through attach, a role change
// and detach, and across a restart (it is not pinned: Open builds it).
func TestIfaceIndexFollows(t *testing.T) {
	netns.Root(t)
	netns.Veth(t, netns.Dev{Name: "xf0"}, netns.Dev{Name: "xf1"})
	netns.IP(t, "link", "set", "xf0", "up")
	netns.IP(t, "link", "set", "xf1", "up")
	nif, err := net.InterfaceByName("xf0")
	if err != nil {
		t.Fatal(err)
	}
	index := uint32(nif.Index)
	pin := netns.PinPath(t)
	d, err := Open(Options{PinPath: pin, RoutesPerVRF: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	check := func(when string, present bool) {
		t.Helper()
		var h, a xleafIface
		herr := d.objs.Ifaces.Lookup(index, &h)
		if err := d.objs.IfaceIndex.Lookup(index, &a); err != nil {
			t.Fatal(err)
		}
		switch {
		case present && (herr != nil || a != h || a.Role == 0):
			t.Errorf("%s: array %+v, hash %+v (%v)", when, a, h, herr)
		case !present && (herr == nil || a.Role != 0):
			t.Errorf("%s: array %+v, hash %+v (%v), want neither", when, a, h, herr)
		}
	}
	if err := d.SetVRF(VRF{ID: 1, VNI: 4001, RouterMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, VTEP: netip.MustParseAddr("10.10.10.10")}); err != nil {
		t.Fatal(err)
	}
	check("before attach", false)
	if err := d.AttachUplink("xf0"); err != nil {
		t.Fatal(err)
	}
	check("uplink", true)
	if err := d.AttachAccess("xf0", 1); err != nil {
		t.Fatal(err)
	}
	check("access", true)
	d.Close()
	if d, err = Open(Options{PinPath: pin, RoutesPerVRF: 64}); err != nil {
		t.Fatal(err)
	}
	check("after a restart", true)
	if err := d.Detach("xf0"); err != nil {
		t.Fatal(err)
	}
	check("detached", false)
}
