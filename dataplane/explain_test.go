package dataplane_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// TestExplain: each path's steps, in order, with what the program found;
// the frame and action the live program gives the same packet, byte for
// byte; and nothing live moved: no counter, no miss event. (The fuzz test
// holds Explain to the live program on every frame it draws.)
func TestExplain(t *testing.T) {
	l := fixture.New(t)
	ev, err := l.DP.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	be := func(s string) uint32 { b := a(s).As4(); return binary.NativeEndian.Uint32(b[:]) }
	fib := func(kind dataplane.RouteKind, target uint32) uint32 { return uint32(kind)<<24 | target }
	toGreen := fixture.Flow{Src: a("192.168.20.110"), Dst: a("192.168.2.10"), SrcPort: 1234, DstPort: 5678, TTL: 64}
	fromHostRed := func(dst string, ttl uint8) []byte {
		return fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a(dst), TTL: ttl})
	}
	any := ^uint32(0) // a word the test does not check
	tests := []struct {
		name    string
		ingress int
		frame   []byte
		want    []dataplane.TraceStep
	}{
		{
			name:    "the guide's hairpin: VXLAN in RED, leaked into GREEN's VNI",
			ingress: l.Swp3.Index,
			frame:   fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, toGreen)),
			want: []dataplane.TraceStep{
				{Kind: dataplane.TraceIngress, A: uint32(l.Swp3.Index), B: 1, C: 0},
				{Kind: dataplane.TraceVXLAN, A: be(fixture.VTEP.String()), B: fixture.RedVNI, C: dataplane.TraceVNIIndex},
				{Kind: dataplane.TraceVRF, A: uint32(fixture.RED), B: fixture.RedVNI, C: be(fixture.VTEP.String())},
				{Kind: dataplane.TraceFIB, A: uint32(fixture.RED), B: be("192.168.2.10"), C: any},
				{Kind: dataplane.TraceGroup, A: any, B: 2, C: any},
				{Kind: dataplane.TraceMember, A: any, B: any, C: fixture.GreenVNI},
				{Kind: dataplane.TraceUnderlay, A: any, B: any, C: 0},
				{Kind: dataplane.TraceVerdict, A: uint32(fixture.RED), B: uint32(dataplane.ReasonFwdRemote), C: any},
			},
		},
		{
			name:    "a tenant port, leaked to a host of GREEN not yet resolved: the miss event the agent would get",
			ingress: l.Swp10.Index,
			frame:   fromHostRed("192.168.200.77", 64),
			want: []dataplane.TraceStep{
				{Kind: dataplane.TraceIngress, A: uint32(l.Swp10.Index), B: 2, C: uint32(fixture.RED)},
				{Kind: dataplane.TraceVRF, A: uint32(fixture.RED), B: fixture.RedVNI, C: be(fixture.VTEP.String())},
				{Kind: dataplane.TraceFIB, A: uint32(fixture.RED), B: be("192.168.200.77"), C: fib(dataplane.RouteLocal, uint32(fixture.GREEN))},
				{Kind: dataplane.TraceNeigh, A: uint32(fixture.GREEN), B: be("192.168.200.77"), C: 0},
				{Kind: dataplane.TraceEvent, A: 1, B: uint32(fixture.GREEN), C: be("192.168.200.77")},
				{Kind: dataplane.TraceVerdict, A: uint32(fixture.RED), B: uint32(dataplane.ReasonNoNeighbor), C: 0},
			},
		},
		{
			name:    "TTL 1 to a remote route: time exceeded, routed back to the host",
			ingress: l.Swp10.Index,
			frame:   fromHostRed("192.168.1.10", 1),
			want: []dataplane.TraceStep{
				{Kind: dataplane.TraceIngress, A: uint32(l.Swp10.Index), B: 2, C: uint32(fixture.RED)},
				{Kind: dataplane.TraceVRF, A: uint32(fixture.RED), B: fixture.RedVNI, C: be(fixture.VTEP.String())},
				{Kind: dataplane.TraceFIB, A: uint32(fixture.RED), B: be("192.168.1.10"), C: any},
				{Kind: dataplane.TraceICMP, A: 11, B: 0, C: 0},
				{Kind: dataplane.TraceFIB, A: uint32(fixture.RED), B: be(fixture.HostRed.String()), C: fib(dataplane.RouteLocal, uint32(fixture.RED))},
				{Kind: dataplane.TraceNeigh, A: uint32(fixture.RED), B: be(fixture.HostRed.String()), C: uint32(l.Swp10.Index)},
				{Kind: dataplane.TraceVerdict, A: uint32(fixture.RED), B: uint32(dataplane.ReasonTTL), C: 0},
			},
		},
		{
			name:    "not ours: ARP from a host goes to the kernel",
			ingress: l.Swp10.Index,
			frame:   append(append(bytes.Repeat([]byte{0xff}, 6), fixture.HostRedMAC...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1),
			want: []dataplane.TraceStep{
				{Kind: dataplane.TraceIngress, A: uint32(l.Swp10.Index), B: 2, C: uint32(fixture.RED)},
				{Kind: dataplane.TraceVerdict, A: 0, B: uint32(dataplane.ReasonPass), C: 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := l.DP.Counters()
			if err != nil {
				t.Fatal(err)
			}
			tr, err := l.DP.Explain(tt.ingress, tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			after, err := l.DP.Counters()
			if err != nil {
				t.Fatal(err)
			}
			// What the kernel sends on the fixture's ports meanwhile
			// passes: every other counter must stay.
			delete(before, dataplane.CounterKey{Reason: dataplane.ReasonPass})
			delete(after, dataplane.CounterKey{Reason: dataplane.ReasonPass})
			if !maps.Equal(before, after) {
				t.Errorf("explaining moved the live counters: %v -> %v", before, after)
			}
			if len(tr.Steps) != len(tt.want) {
				t.Fatalf("%d steps, want %d:\n got %+v\nwant %+v", len(tr.Steps), len(tt.want), tr.Steps, tt.want)
			}
			for i, w := range tt.want {
				g := tr.Steps[i]
				if g.Kind != w.Kind || (w.A != any && g.A != w.A) || (w.B != any && g.B != w.B) || (w.C != any && g.C != w.C) {
					t.Errorf("step %d: %+v, want %+v", i, g, w)
				}
			}
			action, out := fixture.Run(t, l.DP.Program(), tt.ingress, tt.frame)
			if action != tr.Action || !bytes.Equal(out, tr.Out) {
				t.Errorf("explain: action %d, frame\n%x\nthe live program: action %d, frame\n%x", tr.Action, tr.Out, action, out)
			}
		})
	}
	// The live program's own run above sent its miss event; explaining
	// sent none.
	var got []dataplane.Event
	ev.(*dataplane.Events).SetDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		e, err := ev.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 1 || got[0].Addr != a("192.168.200.77") {
		t.Errorf("miss events %v, want the live run's one", got)
	}
}

// TestExplainAfterClose: a closed data path explains nothing, and says so.
func TestExplainAfterClose(t *testing.T) {
	l := fixture.New(t)
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: netip.MustParseAddr("192.168.1.10"), TTL: 64})
	if _, err := l.DP.Explain(l.Swp10.Index, frame); err != nil {
		t.Fatal(err)
	}
	l.DP.Close()
	if _, err := l.DP.Explain(l.Swp10.Index, frame); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("explain after close: %v, want ErrClosed", err)
	}
}
