package bench_test

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/bench"
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
// writes the frame and redirects it out of gen0. veth runs a receiver's
// NAPI on the sender's CPU, so everything runs on the generator's CPU
// unless a device's NAPI is moved to a thread (BenchmarkPacketRate's
// cores=2).
type rateBed struct {
	gen, dut, sink string
	in0, out0      *net.Interface // in dut
	sinkMAC        net.HardwareAddr
	gen0           int
	genMAC         net.HardwareAddr
	counter        *ebpf.Map
	frame          []byte
	table          []dataplane.Route // RED's routes beyond the guide's (the 1M case)
}

const sinkNextHop = "169.254.9.2"

// newRateBed builds a bed whose namespaces are named with tag.
func newRateBed(b *testing.B, tag string) *rateBed {
	netns.Root(b)
	r := &rateBed{gen: netns.New(b, tag+"gen"), dut: netns.New(b, tag+"dut"), sink: netns.New(b, tag+"sink")}
	netns.Veth(b, netns.Dev{NS: r.gen, Name: "gen0"}, netns.Dev{NS: r.dut, Name: "in0"})
	netns.Veth(b, netns.Dev{NS: r.dut, Name: "out0"}, netns.Dev{NS: r.sink, Name: "sink0"})
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
	r.genMAC = genMAC
	r.frame = dciFrame(b, genMAC, r.in0.HardwareAddr, netip.MustParseAddr("192.168.2.10"))
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
// with a packet for to (192.168.2.10: GREEN, leaked into RED with label
// 4002).
// An IPv6 to comes from green2's IPv6 twin.
func dciFrame(b *testing.B, src, dst net.HardwareAddr, to netip.Addr) []byte {
	from := netip.MustParseAddr("192.168.20.110")
	if to.Is6() {
		from = netip.MustParseAddr("2001:db8:20::110")
	}
	inner := fixture.Frame(b, fixture.RouterMAC, fixture.Border04MAC, fixture.Flow{
		Src: from, Dst: to,
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

// redirectMapTo is redirectTo through a devmap (bpf_redirect_map), made in
// namespace ns (a devmap resolves its ifindex there).
func redirectMapTo(b *testing.B, ns string, ifindex int) *ebpf.Program {
	var m *ebpf.Map
	netns.Do(b, ns, func() {
		var err error
		if m, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 1}); err != nil {
			b.Fatal(err)
		}
		if err := m.Put(uint32(0), uint32(ifindex)); err != nil {
			b.Fatal(err)
		}
	})
	b.Cleanup(func() { m.Close() })
	return load(b, asm.Instructions{
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	})
}

func passAll(b *testing.B) *ebpf.Program {
	return load(b, asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()})
}

// generator writes one of frames (a power of two of them, all of one
// length), picked at random, into every live page (the kernel recycles
// pages without restoring them, and the device under test rewrites headers
// in place) and sends it out of ifindex.
func generator(b *testing.B, frames [][]byte, ifindex int) *ebpf.Program {
	frame := frames[0]
	size := (len(frame) + 7) &^ 7
	tmpl, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(size), MaxEntries: uint32(len(frames))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tmpl.Close() })
	for i, f := range frames {
		if len(f) != len(frame) || len(frames)&(len(frames)-1) != 0 {
			b.Fatalf("generator: %d frames, frame %d of %d bytes, frame 0 of %d", len(frames), i, len(f), len(frame))
		}
		padded := make([]byte, size)
		copy(padded, f)
		if err := tmpl.Put(uint32(i), padded); err != nil {
			b.Fatal(err)
		}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetPrandomU32.Call(),
		asm.And.Imm(asm.R0, int32(len(frames)-1)),
		asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
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

// send generates n frames from CPU 0; it returns how many reached the sink
// and the rate they arrived at.
func (r *rateBed) send(b *testing.B, gen *ebpf.Program, n uint32) (uint64, float64) {
	before := r.counted(b)
	var took time.Duration
	netns.Do(b, r.gen, func() { // the thread is locked to the namespace
		onCPU(b, 0)
		defer onCPU(b, -1)
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

// cpuTimes reads /proc/stat: per line (all CPUs, then each), busy and
// total jiffies.
func cpuTimes(b *testing.B) [][2]uint64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	var out [][2]uint64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var busy, total uint64
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		out = append(out, [2]uint64{busy, total})
	}
	return out
}

// busyFraction is each line's busy share between two cpuTimes readings.
func busyFraction(before, after [][2]uint64) []float64 {
	out := make([]float64, len(after))
	for i := range after {
		if i < len(before) && after[i][1] > before[i][1] {
			out[i] = float64(after[i][0]-before[i][0]) / float64(after[i][1]-before[i][1])
		}
	}
	return out
}

// onCPU pins the calling thread to cpu, or to every CPU with -1.
func onCPU(b *testing.B, cpu int) {
	var set unix.CPUSet
	for c := range runtime.NumCPU() {
		if cpu < 0 || c == cpu {
			set.Set(c)
		}
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		b.Fatalf("pin to cpu %d: %v", cpu, err)
	}
}

// threadNAPI moves dev's receive processing (veth's NAPI, which runs its
// XDP program) into a kernel thread pinned to cpu. The device needs an XDP
// program first: veth has no NAPI without one.
func threadNAPI(b *testing.B, ns, dev string, cpu int) {
	if out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /sys/class/net/"+dev+"/threaded").CombinedOutput(); err != nil {
		b.Fatalf("threaded napi on %s: %v %s", dev, err, out)
	}
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	pinned := 0
	for _, c := range comms {
		name, err := os.ReadFile(c)
		if err != nil || !strings.HasPrefix(string(name), "napi/"+dev+"-") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(pid, &set); err == nil {
			pinned++
		}
	}
	if pinned == 0 {
		b.Fatalf("no napi thread for %s", dev)
	}
}

// BenchmarkPacketRate: the guide's DCI hairpin (decap VNI 4001, leak into
// GREEN's route, re-encap VNI 4002) at full rate through xleaf's XDP
// program, the redirect-only ceiling, and the kernel (VXLAN devices with a
// policy-routing table as the VRF), same frames, same run; Mpps at the sink.
//
// cores=1: generator, device under test and sink share CPU 0 (veth runs
// the receiver's NAPI on the sender's CPU). cores=2: the device under test
// runs in a NAPI thread on CPU 1, and the sink with it; the generator has
// CPU 0.
//
// Each round measures the three paths back to back, so a round's ratios
// share the machine's state; the figures are the median over the rounds,
// with min and max.
//
// routes=1M: RED holds 1M more routes (random /24-/32, as BenchmarkXDP's,
// all to leaf01 with GREEN's label) and the generator sends 4096 frames to
// random addresses inside them, picked at random per frame, so the lookups
// miss the caches as a big table's do. Only xleaf and the ceiling: the
// kernel bed has the guide's routes only.
//
// ipv6: the same hairpin with an inner IPv6 packet (to 2001:db8:2::10, the
// twin of 192.168.2.10, RED's route 2001:db8:2::/64), xleaf and the
// ceiling on the same frames.
func BenchmarkPacketRate(b *testing.B) {
	for _, cores := range []int{1, 2} {
		b.Run(fmt.Sprintf("cores=%d", cores), func(b *testing.B) { packetRate(b, cores, 0, false) })
	}
	b.Run("routes=1M/cores=1", func(b *testing.B) { packetRate(b, 1, 1_000_000, false) })
	b.Run("ipv6/cores=1", func(b *testing.B) { packetRate(b, 1, 0, true) })
}

var ratePaths = flag.String("rate-paths", "xleaf,xleaf-fib,ceiling,kernel",
	"BenchmarkPacketRate: the paths to run (e.g. only xleaf, under perf); also ceiling-devmap, the ceiling through a devmap, "+
		"and floor, the DCI hairpin's packet work without lookups (bpf/floor.c)")

// packetRate runs the paths with routes more routes in RED (then to
// random addresses in them), or with the guide's and, v6, IPv6 frames.
func packetRate(b *testing.B, cores, routes int, v6 bool) {
	if cores > runtime.NumCPU() {
		b.Skipf("needs %d CPUs", cores)
	}
	// The kernel path gets a bed of its own: its ip rule slows every FIB
	// lookup in its namespace for good, xleaf's bpf_fib_lookup included.
	// It is set up once; xleaf and the ceiling take turns on the other bed.
	r := newRateBed(b, "x")
	const frames, rounds = 1 << 21, 5
	var k *rateBed
	var gen, kgen *ebpf.Program
	switch {
	case v6:
		r.frame = dciFrame(b, r.genMAC, r.in0.HardwareAddr, netip.MustParseAddr("2001:db8:2::10"))
		gen = generator(b, [][]byte{r.frame}, r.gen0)
	case routes == 0:
		gen = generator(b, [][]byte{r.frame}, r.gen0)
		k = newRateBed(b, "k")
		k.kernel(b)
		kgen = generator(b, [][]byte{k.frame}, k.gen0)
	default:
		gen = generator(b, r.bigTable(b, routes, 4096), r.gen0)
	}
	type variant struct {
		name  string
		bed   *rateBed
		gen   *ebpf.Program
		setup func() func()
	}
	variants := []variant{
		{"xleaf", r, gen, func() func() { return r.xleaf(b, true) }},
		{"xleaf-fib", r, gen, func() func() { return r.xleaf(b, false) }},
		{"ceiling", r, gen, func() func() { return r.onIn0(b, redirectTo(b, r.out0.Index)) }},
		{"ceiling-devmap", r, gen, func() func() { return r.onIn0(b, redirectMapTo(b, r.dut, r.out0.Index)) }},
		{"floor", r, gen, func() func() { return r.onIn0(b, r.floor(b)) }},
		{"kernel", k, kgen, func() func() { return func() {} }},
	}
	variants = slices.DeleteFunc(variants, func(v variant) bool {
		return !slices.Contains(strings.Split(*ratePaths, ","), v.name) || v.bed == nil
	})
	samples := map[string][]float64{}
	for range rounds {
		round := map[string]float64{}
		for _, v := range variants {
			teardown := v.setup()
			if cores == 2 {
				// The device under test (and the sink it sends to,
				// whose NAPI runs where it is scheduled) on CPU 1.
				threadNAPI(b, v.bed.dut, "in0", 1)
			}
			v.bed.send(b, v.gen, 1<<14) // warm up: neighbours, caches
			// The generator offers more than any path takes; each veth
			// hop queues and drops the excess, so the figure is what
			// reached the sink per second.
			before := cpuTimes(b)
			got, mpps := v.bed.send(b, v.gen, frames)
			busy := busyFraction(before, cpuTimes(b))
			teardown()
			b.Logf("%s: %.2f Mpps, %d of %d frames delivered, CPU busy %.0f%%", v.name, mpps, got, frames, 100*busy[0])
			if len(busy) > 2 {
				b.Logf("%s: CPU 0 busy %.0f%%, CPU 1 %.0f%%", v.name, 100*busy[1], 100*busy[2])
			}
			if got == 0 {
				b.Fatalf("%s: nothing reached the sink", v.name)
			}
			round[v.name] = mpps
			samples[v.name+"-Mpps"] = append(samples[v.name+"-Mpps"], mpps)
		}
		if round["ceiling"] > 0 {
			samples["xleaf/ceiling"] = append(samples["xleaf/ceiling"], round["xleaf"]/round["ceiling"])
			if round["floor"] > 0 {
				samples["floor/ceiling"] = append(samples["floor/ceiling"], round["floor"]/round["ceiling"])
			}
			if round["xleaf-fib"] > 0 {
				samples["xleaf-fib/ceiling"] = append(samples["xleaf-fib/ceiling"], round["xleaf-fib"]/round["ceiling"])
			}
		}
		if round["kernel"] > 0 {
			samples["xleaf/kernel"] = append(samples["xleaf/kernel"], round["xleaf"]/round["kernel"])
		}
		b.Logf("round: xleaf %.2f xleaf-fib %.2f ceiling %.2f kernel %.2f Mpps", round["xleaf"], round["xleaf-fib"], round["ceiling"], round["kernel"])
	}
	for name, xs := range samples {
		slices.Sort(xs)
		b.ReportMetric(xs[len(xs)/2], name)
		b.ReportMetric(xs[0], name+"-min")
		b.ReportMetric(xs[len(xs)-1], name+"-max")
	}
}

// floor is bpf/floor.c set up for the bed's frames: what the DCI
// hairpin's packet work costs with every lookup's answer a constant (the
// guide's route: out of out0 to the sink, towards leaf01 with GREEN's VNI).
func (r *rateBed) floor(b *testing.B) *ebpf.Program {
	spec, err := bench.LoadFloor()
	if err != nil {
		b.Fatal(err)
	}
	halfwords := func(m net.HardwareAddr) [3]uint16 {
		return [3]uint16{binary.NativeEndian.Uint16(m[0:]), binary.NativeEndian.Uint16(m[2:]), binary.NativeEndian.Uint16(m[4:])}
	}
	for name, v := range map[string]any{
		"out_ifindex": uint32(r.out0.Index), "out_vni": uint32(fixture.GreenVNI),
		"out_saddr": fixture.VTEP.As4(), "out_daddr": fixture.Leaf01.As4(),
		"out_smac": halfwords(r.out0.HardwareAddr), "out_dmac": halfwords(r.sinkMAC),
		"rmac": halfwords(fixture.RouterMAC), "remote_rmac": halfwords(fixture.Leaf01MAC),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			b.Fatalf("floor: %s: %v", name, err)
		}
	}
	var objs bench.FloorObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		b.Fatalf("floor: %v", err)
	}
	b.Cleanup(func() { objs.Close() })
	return objs.FloorDci
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

// xleaf puts xleaf's data path on in0 with borderleaf01's RED route, with
// the underlay next hops resolved as xleafd does (hops) or asked of the
// kernel per packet.
func (r *rateBed) xleaf(b *testing.B, hops bool) func() {
	var dp *dataplane.Dataplane
	netns.Do(b, r.dut, func() {
		var err error
		n := uint32(len(r.table))
		dp, err = dataplane.Open(dataplane.Options{PinPath: netns.PinPath(b), RoutesPerVRF: 1024, FIBChunks: 4096 + n/6, FIBSmallChunks: 4096 + n})
		if err != nil {
			b.Fatal(err)
		}
		must(b, dp.AddVTEP(fixture.VTEP))
		must(b, dp.SetVRF(dataplane.VRF{ID: fixture.RED, VNI: fixture.RedVNI, RouterMAC: fixture.RouterMAC, VTEP: fixture.VTEP}))
		must(b, dp.ReplaceTable(fixture.RED, append([]dataplane.Route{
			{Prefix: netip.MustParsePrefix("192.168.2.0/24"), Kind: dataplane.RouteRemote, Remotes: toLeaf01},
			{Prefix: netip.MustParsePrefix("2001:db8:2::/64"), Kind: dataplane.RouteRemote, Remotes: toLeaf01}}, r.table...)))
		must(b, dp.AttachUplink("in0"))
		if hops {
			resolveHops(b, dp)
			if h, _ := dp.UnderlayHops(); len(h) != 1 {
				b.Fatalf("underlay next hops resolved: %v, want leaf01's", h)
			}
		}
	})
	return func() {
		netns.Do(b, r.dut, func() { dp.Detach("in0") })
		dp.Close()
	}
}

// toLeaf01 is the remote of every route of the bed: leaf01, with GREEN's
// label, out of out0.
var toLeaf01 = []dataplane.Remote{{VTEP: fixture.Leaf01, VNI: fixture.GreenVNI, RouterMAC: fixture.Leaf01MAC}}

// bigTable gives the bed n more routes for RED, random /24-/32 prefixes in
// BenchmarkXDP's regions, and returns frames DCI frames to random
// addresses inside random ones of them.
func (r *rateBed) bigTable(b *testing.B, n, frames int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	bed := &bed{rng: rng}
	seen := make(map[netip.Prefix]bool, n)
	r.table = make([]dataplane.Route, 0, n)
	for len(r.table) < n {
		p := netip.PrefixFrom(bed.randomAddr(), 24+rng.IntN(9)).Masked()
		if !seen[p] {
			seen[p] = true
			r.table = append(r.table, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: toLeaf01})
		}
	}
	var out [][]byte
	for range frames {
		p := r.table[rng.IntN(n)].Prefix
		out = append(out, dciFrame(b, r.genMAC, r.in0.HardwareAddr, bed.randomIn([]netip.Prefix{p})))
	}
	return out
}

// kernel is the same job in the kernel: VXLAN devices for VNI 4001 and
// 4002 and a routing table standing in for VRF RED.
func (r *rateBed) kernel(b *testing.B) {
	// in0 takes frames redirected into it only with an XDP program.
	b.Cleanup(r.onIn0(b, passAll(b))) // for the bed's life
	ip := func(args ...string) { netns.IP(b, append([]string{"-n", r.dut}, args...)...) }
	vtep := fixture.VTEP.String()
	for _, vni := range []string{"4001", "4002"} {
		netns.Link(b, netns.Dev{NS: r.dut, Name: "vx" + vni, MAC: fixture.RouterMAC}, "vxlan", "id", vni, "local", vtep, "dstport", "4789", "nolearning")
	}
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
}
