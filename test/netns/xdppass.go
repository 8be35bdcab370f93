package netns

import (
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	vnetns "github.com/vishvananda/netns"
)

// AttachPass puts an XDP program that passes everything on ifname inside
// namespace ns. A veth only accepts frames redirected into it by XDP on its
// peer when it runs an XDP program itself (or GRO), so the receiving ends
// of a test topology need one.
func AttachPass(t testing.TB, ns, ifname string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load xdp pass program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	Do(t, ns, func() {
		nif, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatalf("%s in %s: %v", ifname, ns, err)
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: nif.Index})
		if err != nil {
			t.Fatalf("attach xdp pass to %s in %s: %v", ifname, ns, err)
		}
		t.Cleanup(func() { l.Close() })
	})
}

// Enter runs fn on a thread inside namespace ns: interface lookups, XDP
// attachments and BPF_PROG_TEST_RUN's ingress interface are that
// namespace's. fn must not start goroutines that rely on it.
func Enter(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := vnetns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := vnetns.Set(target); err != nil {
		return fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	defer vnetns.Set(orig)
	return fn()
}

// Do is Enter for a test: a failure to enter fails t.
func Do(t testing.TB, ns string, fn func()) {
	t.Helper()
	if err := Enter(ns, func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}
