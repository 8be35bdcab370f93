package lab

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/netns"
)

// RunLive runs the XDP program attached to node's port (the live one,
// found through its pinned link) on frame with BPF_PROG_TEST_RUN, as if
// the frame arrived on that port, and returns its action and the frame as
// it left it. The packet counts in the live counters, as one arriving
// would; nothing is sent.
func (l *Lab) RunLive(node, port string, frame []byte) (int, []byte, error) {
	lk, err := link.LoadPinnedLink(filepath.Join(l.pinPath(node), "link_"+port), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: pinned link: %w", node, port, err)
	}
	defer lk.Close()
	info, err := lk.Info()
	if err != nil {
		return 0, nil, err
	}
	prog, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: program %d: %w", node, port, info.Program, err)
	}
	defer prog.Close()
	var action int
	var out []byte
	err = netns.Enter(l.ns(node), func() error {
		ifc, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		action, out, err = dataplane.RunFrame(prog, ifc.Index, frame)
		return err
	})
	return action, out, err
}
