// Command xleafctl shows what xleaf is doing.
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/xleaf/xleaf/dataplane"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: xleafctl [--pin-path DIR] [-o json] show counters`)
	os.Exit(2)
}

func main() {
	pinPath := flag.String("pin-path", dataplane.DefaultPinPath, "bpf filesystem directory of the data path's maps")
	output := flag.String("o", "", "output format: json")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() != 2 || flag.Arg(0) != "show" || flag.Arg(1) != "counters" {
		usage()
	}
	if err := showCounters(*pinPath, *output == "json"); err != nil {
		fmt.Fprintln(os.Stderr, "xleafctl:", err)
		os.Exit(1)
	}
}

type counterRow struct {
	VRF     dataplane.VRFID `json:"vrf"`
	Reason  string          `json:"reason"`
	Dropped bool            `json:"dropped"`
	Packets uint64          `json:"packets"`
	Bytes   uint64          `json:"bytes"`
}

func showCounters(pinPath string, asJSON bool) error {
	cs, err := dataplane.ReadCounters(pinPath)
	if err != nil {
		return err
	}
	rows := make([]counterRow, 0, len(cs))
	for k, c := range cs {
		rows = append(rows, counterRow{VRF: k.VRF, Reason: k.Reason.String(), Dropped: k.Reason.Dropped(), Packets: c.Packets, Bytes: c.Bytes})
	}
	slices.SortFunc(rows, func(a, b counterRow) int { return cmp.Or(cmp.Compare(a.VRF, b.VRF), cmp.Compare(a.Reason, b.Reason)) })
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VRF\tReason\tPackets\tBytes")
	for _, r := range rows {
		vrf := fmt.Sprint(r.VRF)
		if r.VRF == 0 {
			vrf = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", vrf, r.Reason, r.Packets, r.Bytes)
	}
	return w.Flush()
}
