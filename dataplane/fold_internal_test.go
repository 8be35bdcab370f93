package dataplane

import (
	"maps"
	"net"
	"net/netip"
	"testing"

	"github.com/xleaf/xleaf/test/netns"
)

// TestVXLANFoldFollows: vxlan_vrfs, the one lookup a VXLAN packet takes, is
// always vteps x vni_vrf, through every change of either and across a
// restart (it is not pinned: Open builds it).
func TestVXLANFoldFollows(t *testing.T) {
	netns.Root(t)
	pin := netns.PinPath(t)
	d, err := Open(Options{PinPath: pin, RoutesPerVRF: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	rmac := net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x06}
	a, b := netip.MustParseAddr("10.10.10.10"), netip.MustParseAddr("10.10.10.11")
	vrf := func(id VRFID, vni uint32) VRF { return VRF{ID: id, VNI: vni, RouterMAC: rmac, VTEP: a} }
	check := func(when string) {
		t.Helper()
		want := map[xleafVxlanKey]uint32{}
		vteps, err := d.localVTEPs()
		if err != nil {
			t.Fatal(err)
		}
		var vni, id uint32
		it := d.objs.VniVrf.Iterate()
		for it.Next(&vni, &id) {
			for _, v := range vteps {
				want[xleafVxlanKey{Vtep: v, Vni: vni}] = id
			}
		}
		got := map[xleafVxlanKey]uint32{}
		var k xleafVxlanKey
		it = d.objs.VxlanVrfs.Iterate()
		for it.Next(&k, &id) {
			got[k] = id
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: vxlan_vrfs = %v, want %v", when, got, want)
		}
		if len(want) == 0 && when != "empty" {
			t.Errorf("%s: nothing to check", when)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check("empty")
	must(d.SetVRF(vrf(1, 4001)))
	must(d.AddVTEP(a))
	check("a VRF, then a VTEP")
	must(d.SetVRF(vrf(2, 4002)))
	check("a VTEP, then a VRF")
	must(d.AddVTEP(b))
	check("two VTEPs")
	must(d.SetVRF(vrf(1, 4011)))
	check("a VRF's VNI changed")
	must(d.DeleteVRF(2))
	check("a VRF deleted")
	must(d.DeleteVTEP(a))
	check("a VTEP deleted")
	must(d.SetVRF(vrf(3, 4003)))
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
