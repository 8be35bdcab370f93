package dataplane_test

import (
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// icmpStats is RED's tally now.
func icmpStats(t *testing.T, l *fixture.Leaf) dataplane.ICMPStats {
	t.Helper()
	s, err := l.DP.ICMPStats()
	if err != nil {
		t.Fatal(err)
	}
	return s[fixture.RED]
}

// TestICMPErrorsOnlyWhereAllowed: RFC 1812 4.3.2.7's packets are dropped
// without an error (and without trying to send one); queries are answered.
func TestICMPErrorsOnlyWhereAllowed(t *testing.T) {
	l := fixture.New(t)
	expiring := func(f fixture.Flow) []byte {
		f.TTL = 1
		return fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f)
	}
	host := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: 7, DstPort: 9}
	icmp := func(typ byte) fixture.Flow {
		f := host
		f.Proto = layers.IPProtocolICMPv4
		f.Payload = []byte{typ, 0, 0, 0, 0, 1, 0, 1}
		return f
	}
	laterFragment := expiring(host)
	laterFragment[14+6], laterFragment[14+7] = 0x00, 0x10 // offset 128
	fixIPv4Checksum(laterFragment[14:])
	fromSrc := func(src string) []byte { f := host; f.Src = a(src); return expiring(f) }
	dropTTL := want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonTTL}

	for _, c := range []struct {
		name  string
		frame []byte
		want  want
	}{
		{"an echo request is answered", expiring(icmp(8)),
			want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonTTL,
				out: answerHost(t, l, fixture.RedGateway, fixture.ICMP{Type: 11}, expiring(icmp(8)))}},
		{"an ICMP error is not (destination unreachable)", expiring(icmp(3)), dropTTL},
		{"an ICMP error is not (time exceeded)", expiring(icmp(11)), dropTTL},
		{"an unknown ICMP type is not", expiring(icmp(42)), dropTTL},
		{"an ICMP header cut off is not", expiring(func() fixture.Flow { f := icmp(8); f.Payload = nil; return f }()), dropTTL},
		{"a later fragment is not", laterFragment, dropTTL},
		{"nor a packet from 0.0.0.0", fromSrc("0.0.0.0"), dropTTL},
		{"nor from loopback", fromSrc("127.0.0.1"), dropTTL},
		{"nor from a multicast address", fromSrc("224.0.0.9"), dropTTL},
		{"nor from the broadcast address", fromSrc("255.255.255.255"), dropTTL},
		{"nor a packet to a group", expiring(fixture.Flow{Src: fixture.HostRed, Dst: a("239.1.1.1")}),
			want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := icmpStats(t, l)
			expect(t, l, l.Swp10.Index, c.frame, c.want)
			after := icmpStats(t, l)
			sent := uint64(0)
			if c.want.action == dataplane.XDPTx {
				sent = 1
			}
			if diff := cmp.Diff(dataplane.ICMPStats{Sent: before.Sent + sent, Suppressed: before.Suppressed, Unroutable: before.Unroutable}, after); diff != "" {
				t.Errorf("RED's ICMP tally (-want +got):\n%s", diff)
			}
		})
	}
}

// TestICMPErrorsRateLimited: a VRF's bucket holds Burst errors and earns
// PerSecond; a packet without a token is dropped as before, and counted.
func TestICMPErrorsRateLimited(t *testing.T) {
	l := fixture.New(t)
	red := fixture.VRFs()[0]
	red.ICMP = dataplane.ICMPErrors{Source: fixture.RedGateway, PerSecond: 1, Burst: 3}
	if err := l.DP.SetVRF(red); err != nil {
		t.Fatal(err)
	}
	vrfs, err := l.DP.VRFs()
	if err != nil {
		t.Fatal(err)
	}
	if vrfs[0].ICMP != red.ICMP {
		t.Errorf("RED's ICMP errors read back as %+v, set %+v", vrfs[0].ICMP, red.ICMP)
	}
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), TTL: 1})
	// One CPU, one bucket: pin the runs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &all)
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	before := icmpStats(t, l)
	var actions []int
	for range 6 {
		action, _ := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame)
		actions = append(actions, action)
	}
	want := []int{dataplane.XDPTx, dataplane.XDPTx, dataplane.XDPTx, dataplane.XDPDrop, dataplane.XDPDrop, dataplane.XDPDrop}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("actions of 6 expiring packets within a second (-want +got):\n%s", diff)
	}
	after := icmpStats(t, l)
	if got := (dataplane.ICMPStats{Sent: after.Sent - before.Sent, Suppressed: after.Suppressed - before.Suppressed}); got != (dataplane.ICMPStats{Sent: 3, Suppressed: 3}) {
		t.Errorf("tally moved by %+v, want 3 sent, 3 suppressed", got)
	}

	// A VRF without an address to send from sends none.
	red.ICMP = dataplane.ICMPErrors{}
	if err := l.DP.SetVRF(red); err != nil {
		t.Fatal(err)
	}
	if action, _ := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame); action != dataplane.XDPDrop {
		t.Errorf("no ICMP source: action %d, want drop", action)
	}
}

// TestICMPErrorUnroutable: an error the VRF cannot route back is dropped
// and tallied; it never leaves through another VRF.
func TestICMPErrorUnroutable(t *testing.T) {
	l := fixture.New(t)
	site2 := fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, TTL: 64}
	frame := fromBorder04(t, l, fixture.BlueVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2))
	before, err := l.DP.ICMPStats()
	if err != nil {
		t.Fatal(err)
	}
	expect(t, l, l.Swp3.Index, frame, want{action: dataplane.XDPDrop, vrf: fixture.BLUE, reason: dataplane.ReasonNoRoute})
	after, err := l.DP.ICMPStats()
	if err != nil {
		t.Fatal(err)
	}
	if got := after[fixture.BLUE].Unroutable - before[fixture.BLUE].Unroutable; got != 1 {
		t.Errorf("BLUE's unroutable errors moved by %d, want 1", got)
	}
}
