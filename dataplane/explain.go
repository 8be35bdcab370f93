package dataplane

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/cilium/ebpf"
)

// Explaining a packet: the program built once more with XLEAF_TRACE
// (bpf/trace.h) records each decision it takes, and Explain runs it on one
// frame through BPF_PROG_TEST_RUN against the live maps. It shares every
// map the forwarding program reads (interfaces, VRFs, FIB, groups,
// underlay, neighbours) and none it writes: its counters, miss events,
// ICMP buckets and underlay fallback count are its own, so explaining
// moves no live counter, sends the agent no event and spends no live ICMP
// token (it skips the rate limit: it shows the error the program sends
// when the limit allows). The frame it returns is the one the
// live program would send, byte for byte.

// TraceKind is what a trace step says (bpf/trace.h).
type TraceKind uint32

const (
	TraceIngress  = TraceKind(xleafTraceKindTRACE_INGRESS)  // A ifindex, B role (0: not ours), C access port's VRF
	TraceVXLAN    = TraceKind(xleafTraceKindTRACE_VXLAN)    // A outer destination, B VNI, C how (TraceVNIIndex, TraceVNIHash)
	TraceVRF      = TraceKind(xleafTraceKindTRACE_VRF)      // A VRF, B its VNI, C its local VTEP
	TraceFIB      = TraceKind(xleafTraceKindTRACE_FIB)      // A VRF, B destination, C FIB entry (0: no route)
	TraceGroup    = TraceKind(xleafTraceKindTRACE_GROUP)    // A nexthop group, B members, C flow hash
	TraceMember   = TraceKind(xleafTraceKindTRACE_MEMBER)   // A member index, B VTEP, C VNI
	TraceUnderlay = TraceKind(xleafTraceKindTRACE_UNDERLAY) // A how (TraceUnderlayResolved, TraceUnderlayKernel), B egress ifindex, C BPF_FIB_LKUP_RET_*
	TraceNeigh    = TraceKind(xleafTraceKindTRACE_NEIGH)    // A host's VRF, B host address, C egress ifindex (0: not resolved)
	TraceEvent    = TraceKind(xleafTraceKindTRACE_EVENT)    // A event kind, B VRF, C address: what the live program would tell the agent
	TraceICMP     = TraceKind(xleafTraceKindTRACE_ICMP)     // A type, B code, C next-hop MTU: the drop is answered
	TraceVerdict  = TraceKind(xleafTraceKindTRACE_VERDICT)  // A VRF, B reason, C leak matrix column
	TraceFIB6     = TraceKind(xleafTraceKindTRACE_FIB6)     // A VRF, B destination's last 32 bits, C route (kind << 24 | target; 0: none)
)

// FIBEntryKind is the kind of the route a FIB entry (TraceFIB's C)
// stands for.
func FIBEntryKind(e uint32) RouteKind { return RouteKind(e >> fibKindBits) }

// How a step found what it found.
const (
	TraceVNIIndex         = uint32(xleafTraceVniTRACE_VNI_INDEX)
	TraceVNIHash          = uint32(xleafTraceVniTRACE_VNI_HASH)
	TraceUnderlayResolved = uint32(xleafTraceUnderlayTRACE_UNDERLAY_RESOLVED)
	TraceUnderlayKernel   = uint32(xleafTraceUnderlayTRACE_UNDERLAY_KERNEL)
)

// TraceStep is one decision; A, B and C as its kind says (addresses in
// network byte order, as the program has them).
type TraceStep struct {
	Kind    TraceKind
	A, B, C uint32
}

// Trace is what the program did with one frame.
type Trace struct {
	Action int         // XDP action
	Out    []byte      // the frame as the program left it (sent, for XDPTx and XDPRedirect)
	Steps  []TraceStep // in order
}

// tracer is the loaded trace build, made on the first Explain.
type tracer struct {
	mu   sync.Mutex // one run at a time: the log is one entry
	prog *ebpf.Program
	log  *ebpf.Map
}

// Explain runs the trace build of the program on frame as if it arrived on
// interface ifindex (which must exist in this network namespace), against
// the live maps, and returns what it did.
func (d *Dataplane) Explain(ifindex int, frame []byte) (Trace, error) {
	t, err := d.tracer()
	if err != nil {
		return Trace{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var log xleafTraceLog
	if err := t.log.Put(uint32(0), &log); err != nil {
		return Trace{}, fmt.Errorf("explain: clear trace: %w", err)
	}
	action, out, err := RunFrame(t.prog, ifindex, frame)
	if err != nil {
		return Trace{}, fmt.Errorf("explain: run: %w", err)
	}
	if err := t.log.Lookup(uint32(0), &log); err != nil {
		return Trace{}, fmt.Errorf("explain: read trace: %w", err)
	}
	tr := Trace{Action: action, Out: out}
	for _, s := range log.Step[:min(int(log.N), len(log.Step))] {
		tr.Steps = append(tr.Steps, TraceStep{Kind: TraceKind(s.Kind), A: s.A, B: s.B, C: s.C})
	}
	return tr, nil
}

// RunFrame runs an XDP program once on frame through BPF_PROG_TEST_RUN,
// as if the frame arrived on interface ifindex (of this network
// namespace), and returns the action and the frame as the program left it.
func RunFrame(prog *ebpf.Program, ifindex int, frame []byte) (int, []byte, error) {
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: make([]byte, len(frame)+256),
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)},
	}
	ret, err := prog.Run(&opts)
	return int(ret), opts.DataOut, err
}

// xdpMD is struct xdp_md as BPF_PROG_TEST_RUN takes it.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// traceOwn are the maps the trace build keeps to itself: those the
// program writes, and templates.
var traceOwn = map[string]bool{
	xleafMapStats: true, xleafMapEventBudget: true, xleafMapEvents: true, xleafMapIcmpBudget: true,
	xleafMapUnderlayFallbacks: true, xleaftraceMapTraceLog: true, xleafMapVrfTableTmpl: true, xleafMapFibL1Tmpl: true,
	xleafMapVrfTable6Tmpl: true, xleafMapIcmp6Scratch: true,
}

func (d *Dataplane) tracer() (*tracer, error) {
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if d.trace != nil {
		return d.trace, nil
	}
	spec, err := loadXleaftrace()
	if err != nil {
		return nil, err
	}
	live := map[string]*ebpf.Map{}
	v := reflect.ValueOf(d.objs.xleafMaps)
	for i := range v.NumField() {
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil {
			live[v.Type().Field(i).Tag.Get("ebpf")] = m
		}
	}
	replace := map[string]*ebpf.Map{}
	for name, ms := range spec.Maps {
		m, ok := live[name]
		if traceOwn[name] || !ok {
			ms.Pinning = ebpf.PinNone
			continue
		}
		ms.MaxEntries = m.MaxEntries()
		replace[name] = m
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"xleaf"`
		Log  *ebpf.Map     `ebpf:"trace_log"`
	}
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: replace}); err != nil {
		return nil, fmt.Errorf("load the explaining program: %w", err)
	}
	d.trace = &tracer{prog: objs.Prog, log: objs.Log}
	return d.trace, nil
}

func (t *tracer) close() {
	t.prog.Close()
	t.log.Close()
}
