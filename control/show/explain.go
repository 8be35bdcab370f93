package show

import (
	"fmt"
	"io"
	"strings"
)

// Explain is `xleafctl explain`: what the data path does with one packet,
// step by step, as the real program ran it against the live tables.
type Explain struct {
	Ingress string        `json:"ingress"` // port, and how the packet came (VXLAN VNI, from)
	Packet  string        `json:"packet"`  // the inner packet as described
	Steps   []ExplainStep `json:"steps"`
	Action  string        `json:"action"`           // XDP_REDIRECT, XDP_TX, XDP_DROP, XDP_PASS
	Egress  string        `json:"egress,omitempty"` // the port it leaves by
	// In is the frame built from the description, as it arrived; Out the
	// frame as it leaves (forwarded only): hex, and the headers decoded,
	// outermost first.
	In  *ExplainFrame `json:"in"`
	Out *ExplainFrame `json:"out,omitempty"`
	// Notes: what the program's run shows but cannot say (the RIB and the
	// data path disagree; the ICMP error is sent only within the rate
	// limit).
	Notes []string `json:"notes,omitempty"`
}

// ExplainStep is one decision of the program. Fields beyond Step and Text
// are set where the step has them.
type ExplainStep struct {
	Step string `json:"step"` // ingress, vxlan, vrf, route, ecmp, underlay, neighbour, event, icmp, verdict
	Text string `json:"text"`

	Interface  string `json:"interface,omitempty"`
	VRF        string `json:"vrf,omitempty"`
	VNI        uint32 `json:"vni,omitempty"`
	VTEP       string `json:"vtep,omitempty"`
	Prefix     string `json:"prefix,omitempty"`     // route: the matched prefix
	Kind       string `json:"kind,omitempty"`       // route: remote, local, blackhole, receive; underlay: resolved, kernel
	Owner      string `json:"owner,omitempty"`      // route: the VRF whose prefix it is ("vni N": none here)
	ImportedBy string `json:"importedBy,omitempty"` // route: the VRF's import target that took it
	RouteRT    string `json:"routeTarget,omitempty"`
	Group      uint32 `json:"group,omitempty"`
	Members    uint32 `json:"members,omitempty"`
	Hash       string `json:"hash,omitempty"`
	Member     *int   `json:"member,omitempty"`
	Address    string `json:"address,omitempty"`
	NextHopMAC string `json:"nextHopMac,omitempty"` // underlay
	Reason     string `json:"reason,omitempty"`
	To         string `json:"to,omitempty"` // verdict: the leak matrix's column
}

// ExplainFrame is a frame as it leaves.
type ExplainFrame struct {
	Hex     string   `json:"hex"`
	Headers []string `json:"headers"`
}

// Text prints the packet, the steps numbered, the verdict and the frame.
func (e Explain) Text(w io.Writer) error {
	fmt.Fprintf(w, "Packet:  %s\n", e.Packet)
	fmt.Fprintf(w, "In:      %s\n\n", e.Ingress)
	width := 0
	for _, s := range e.Steps {
		width = max(width, len(s.Step))
	}
	for i, s := range e.Steps {
		lines := strings.Split(s.Text, "\n")
		fmt.Fprintf(w, "%2d  %-*s  %s\n", i+1, width, s.Step, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "    %-*s  %s\n", width, "", l)
		}
	}
	fmt.Fprintf(w, "\nAction:  %s", e.Action)
	if e.Egress != "" {
		fmt.Fprintf(w, " out %s", e.Egress)
	}
	fmt.Fprintln(w)
	if e.Out != nil {
		fmt.Fprintf(w, "Frame out (%d bytes):\n", len(e.Out.Hex)/2)
		for _, h := range e.Out.Headers {
			fmt.Fprintf(w, "  %s\n", h)
		}
	}
	for _, n := range e.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	return nil
}
