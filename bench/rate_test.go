package bench_test

import (
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

// The packet-rate bed: a generator namespace sends the guide's DCI frames
// (VXLAN VNI 4001 for 192.168.2.10, which RED leaks with label 4002) into
// the device under test, which sends them on to a sink that counts them.
//
//	gen: gen0 ──veth── in0 :dut: out0 ──veth── sink0 :sink
//
// The generator is BPF_PROG_TEST_RUN in live-frame mode: a program that
// writes the frame and redirects it out of gen0. Everything runs on the
// generator's CPU (veth's NAPI runs where it is scheduled), so a figure is
// one core's.
type rateBed struct {
	gen, dut, sink string
	in0, out0      *net.Interface // in dut
	sinkMAC        net.HardwareAddr
	gen0           int
	counter        *ebpf.Map
	frame          []byte
}

const sinkNextHop = "169.254.9.2"

func newRateBed(b *testing.B) *rateBed {
	netns.Root(b)
	r := &rateBed{gen: netns.New(b, "gen"), dut: netns.New(b, "dut"), sink: netns.New(b, "sink")}
	netns.IP(b, "link", "add", "gen0", "netns", r.gen, "type", "veth", "peer", "name", "in0", "netns", r.dut)
	netns.IP(b, "link", "add", "out0", "netns", r.dut, "type", "veth", "peer", "name", "sink0", "netns", r.sink)
	for _, l := range [][2]string{{r.gen, "gen0"}, {r.dut, "in0"}, {r.dut, "out0"}, {r.sink, "sink0"}} {
		netns.IP(b, "-n", l[0], "link", "set", l[1], "up")
	}
	var err error
	r.counter, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.counter.Close() })
	netns.Do(b, r.sink, func() {
		sink0, err := net.InterfaceByName("sink0")
		if err != nil {
			b.Fatal(err)
		}
		r.sinkMAC = sink0.HardwareAddr
		attach(b, sink0.Index, countAndDrop(b, r.counter))
	})
	var genMAC net.HardwareAddr
	netns.Do(b, r.gen, func() {
		gen0, err := net.InterfaceByName("gen0")
		if err != nil {
			b.Fatal(err)
		}
		r.gen0, genMAC = gen0.Index, gen0.HardwareAddr
	})
	netns.Do(b, r.dut, func() {
		r.in0, _ = net.InterfaceByName("in0")
		r.out0, _ = net.InterfaceByName("out0")
	})
	r.frame = dciFrame(b, genMAC, r.in0.HardwareAddr)
	ip := func(args ...string) { netns.IP(b, append([]string{"-n", r.dut}, args...)...) }
	ip("link", "set", "lo", "up")
	ip("addr", "add", fixture.VTEP.String()+"/32", "dev", "lo")
	ip("addr", "add", "169.254.9.1/30", "dev", "out0")
	ip("route", "add", fixture.Leaf01.String()+"/32", "via", sinkNextHop, "dev", "out0")
	ip("neigh", "replace", sinkNextHop, "lladdr", r.sinkMAC.String(), "dev", "out0", "nud", "permanent")
	for _, kv := range []string{"net.ipv4.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"} {
		if out, err := exec.Command("ip", "netns", "exec", r.dut, "sysctl", "-qw", kv).CombinedOutput(); err != nil {
			b.Fatalf("sysctl %s: %v %s", kv, err, out)
		}
	}
	return r
}

// dciFrame is what borderleaf04 sends borderleaf01: VXLAN VNI 4001 (RED)
// with a packet for 192.168.2.10 (GREEN, leaked into RED with label 4002).
func dciFrame(b *testing.B, src, dst net.HardwareAddr) []byte {
	inner := fixture.Frame(b, fixture.RouterMAC, fixture.Border04MAC, fixture.Flow{
		Src: netip.MustParseAddr("192.168.20.110"), Dst: netip.MustParseAddr("192.168.2.10"),
		SrcPort: 4000, DstPort: 5000, TTL: 64, Payload: make([]byte, 18)})
	return fixture.VXLAN(b, fixture.Outer{DstMAC: dst, SrcMAC: src, Src: fixture.Border04, Dst: fixture.VTEP,
		SrcPort: 50000, VNI: fixture.RedVNI}, inner)
}

func attach(b *testing.B, ifindex int, prog *ebpf.Program) {
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex})
	if err != nil {
		b.Fatalf("attach xdp: %v", err)
	}
	b.Cleanup(func() { l.Close() })
}

func load(b *testing.B, insns asm.Instructions) *ebpf.Program {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: insns})
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	b.Cleanup(func() { prog.Close() })
	return prog
}

// countAndDrop is the sink: one per-CPU counter, then XDP_DROP.
func countAndDrop(b *testing.B, counter *ebpf.Map) *ebpf.Program {
	return load(b, asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"), // XDP_DROP
		asm.Return(),
	})
}

// redirectTo is the ceiling: every frame straight out of one interface.
func redirectTo(b *testing.B, ifindex int) *ebpf.Program {
	return load(b, asm.Instructions{
		asm.Mov.Imm(asm.R1, int32(ifindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	})
}

func passAll(b *testing.B) *ebpf.Program {
	return load(b, asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()})
}

// generator writes frame into every live page (the kernel recycles pages
// without restoring them, and the device under test rewrites headers in
// place) and sends it out of ifindex.
func generator(b *testing.B, frame []byte, ifindex int) *ebpf.Program {
	size := (len(frame) + 7) &^ 7
	tmpl, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(size), MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tmpl.Close() })
	padded := make([]byte, size)
	copy(padded, frame)
	if err := tmpl.Put(uint32(0), padded); err != nil {
		b.Fatal(err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, tmpl.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(len(frame))),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
	}
	for off := 0; off+8 <= len(frame); off += 8 {
		insns = append(insns, asm.LoadMem(asm.R5, asm.R0, int16(off), asm.DWord), asm.StoreMem(asm.R2, int16(off), asm.R5, asm.DWord))
	}
	for off := len(frame) &^ 7; off < len(frame); off++ {
		insns = append(insns, asm.LoadMem(asm.R5, asm.R0, int16(off), asm.Byte), asm.StoreMem(asm.R2, int16(off), asm.R5, asm.Byte))
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R1, int32(ifindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"),
		asm.Return(),
	)
	return load(b, insns)
}

// counted is the sink's total.
func (r *rateBed) counted(b *testing.B) uint64 {
	var per []uint64
	if err := r.counter.Lookup(uint32(0), &per); err != nil {
		b.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

type xdpMD struct{ Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32 }

// send generates n frames; it returns how many reached the sink and the
// rate they arrived at.
func (r *rateBed) send(b *testing.B, gen *ebpf.Program, n uint32) (uint64, float64) {
	before := r.counted(b)
	var took time.Duration
	netns.Do(b, r.gen, func() {
		start := time.Now()
		_, err := gen.Run(&ebpf.RunOptions{Data: r.frame, Repeat: n, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
			Context: xdpMD{DataEnd: uint32(len(r.frame)), IngressIfindex: uint32(r.gen0)}})
		took = time.Since(start)
		if err != nil {
			b.Fatalf("live frames: %v", err)
		}
	})
	got := r.counted(b) - before
	return got, float64(got) / took.Seconds() / 1e6
}

// BenchmarkPacketRate: the guide's DCI hairpin (decap VNI 4001, leak into
// GREEN's route, re-encap VNI 4002) at full rate through xleaf's XDP
// program, the redirect-only ceiling, and the kernel (VXLAN devices with a
// policy-routing table as the VRF), same frames, same run; Mpps at the sink.
func BenchmarkPacketRate(b *testing.B) {
	r := newRateBed(b)
	const frames = 1 << 21
	gen := generator(b, r.frame, r.gen0)
	variants := []struct {
		name  string
		setup func() func()
	}{
		{"xleaf", func() func() { return r.xleaf(b) }},
		{"ceiling", func() func() { return r.onIn0(b, redirectTo(b, r.out0.Index)) }},
		{"kernel", func() func() { return r.kernel(b) }},
	}
	rates := map[string][]float64{}
	for _, v := range variants {
		teardown := v.setup()
		r.send(b, gen, 1<<14) // warm up: neighbours, caches
		for range 3 {
			// The generator offers more than any path takes; each veth
			// hop queues and drops the excess, so the figure is what
			// reached the sink per second.
			got, mpps := r.send(b, gen, frames)
			if got == 0 {
				b.Fatalf("%s: nothing reached the sink", v.name)
			}
			b.Logf("%s: %d of %d frames delivered (%.1f%%)", v.name, got, frames, 100*float64(got)/frames)
			rates[v.name] = append(rates[v.name], mpps)
		}
		teardown()
	}
	for name, rs := range rates {
		slices.Sort(rs)
		b.ReportMetric(rs[len(rs)/2], name+"-Mpps")
		b.Logf("%s: Mpps %.2f (min %.2f, max %.2f)", name, rs[len(rs)/2], rs[0], rs[len(rs)-1])
	}
	med := func(n string) float64 { return rates[n][len(rates[n])/2] }
	b.ReportMetric(med("xleaf")/med("ceiling"), "xleaf/ceiling")
	b.ReportMetric(med("xleaf")/med("kernel"), "xleaf/kernel")
}

// onIn0 attaches prog to the device under test's ingress; the returned
// function detaches it.
func (r *rateBed) onIn0(b *testing.B, prog *ebpf.Program) func() {
	var l link.Link
	netns.Do(b, r.dut, func() {
		var err error
		if l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: r.in0.Index}); err != nil {
			b.Fatal(err)
		}
	})
	return func() { l.Close() }
}

// xleaf puts xleaf's data path on in0 with borderleaf01's RED route.
func (r *rateBed) xleaf(b *testing.B) func() {
	var dp *dataplane.Dataplane
	netns.Do(b, r.dut, func() {
		var err error
		dp, err = dataplane.Open(dataplane.Options{PinPath: netns.PinPath(b), RoutesPerVRF: 1024})
		if err != nil {
			b.Fatal(err)
		}
		must(b, dp.AddVTEP(fixture.VTEP))
		must(b, dp.SetVRF(dataplane.VRF{ID: fixture.RED, VNI: fixture.RedVNI, RouterMAC: fixture.RouterMAC, VTEP: fixture.VTEP}))
		must(b, dp.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.2.0/24"), Kind: dataplane.RouteRemote,
			Remotes: []dataplane.Remote{{VTEP: fixture.Leaf01, VNI: fixture.GreenVNI, RouterMAC: fixture.Leaf01MAC}}}))
		must(b, dp.AttachUplink("in0"))
	})
	return func() {
		netns.Do(b, r.dut, func() { dp.Detach("in0") })
		dp.Close()
	}
}

// kernel is the same job in the kernel: VXLAN devices for VNI 4001 and
// 4002 and a routing table standing in for VRF RED.
func (r *rateBed) kernel(b *testing.B) func() {
	// in0 takes frames redirected into it only with an XDP program.
	detach := r.onIn0(b, passAll(b))
	ip := func(args ...string) { netns.IP(b, append([]string{"-n", r.dut}, args...)...) }
	vtep := fixture.VTEP.String()
	ip("link", "add", "vx4001", "address", fixture.RouterMAC.String(), "type", "vxlan", "id", "4001", "local", vtep, "dstport", "4789", "nolearning")
	ip("link", "add", "vx4002", "address", fixture.RouterMAC.String(), "type", "vxlan", "id", "4002", "local", vtep, "dstport", "4789", "nolearning")
	ip("link", "set", "vx4001", "up")
	ip("link", "set", "vx4002", "up")
	ip("rule", "add", "iif", "vx4001", "lookup", "100")
	ip("route", "add", "192.168.2.0/24", "via", fixture.Leaf01.String(), "dev", "vx4002", "onlink", "table", "100")
	ip("neigh", "replace", fixture.Leaf01.String(), "lladdr", fixture.Leaf01MAC.String(), "dev", "vx4002", "nud", "permanent")
	if out, err := exec.Command("ip", "netns", "exec", r.dut, "bridge", "fdb", "append", fixture.Leaf01MAC.String(), "dev", "vx4002", "dst", fixture.Leaf01.String()).CombinedOutput(); err != nil {
		b.Fatalf("bridge fdb: %v %s", err, out)
	}
	for _, kv := range []string{"net.ipv4.conf.vx4001.rp_filter=0", "net.ipv4.conf.vx4001.forwarding=1"} {
		exec.Command("ip", "netns", "exec", r.dut, "sysctl", "-qw", kv).Run()
	}
	return func() {
		detach()
		ip("link", "del", "vx4001")
		ip("link", "del", "vx4002")
	}
}
