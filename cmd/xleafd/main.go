// Command xleafd is the xleaf daemon. Today it loads and manages the data
// path; the control agent (configuration, BGP EVPN, RIB) comes next.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/xleaf/xleaf/dataplane"
)

func main() {
	pinPath := flag.String("pin-path", dataplane.DefaultPinPath, "bpf filesystem directory of the data path's maps")
	probe := flag.Bool("probe", false, "load the XDP program into a scratch pin path and exit: does this kernel run xleaf?")
	reset := flag.Bool("reset-dataplane", false, "detach xleaf from every interface and delete its pinned maps, then exit")
	flag.Parse()

	switch {
	case *probe:
		if err := runProbe(*pinPath); err != nil {
			fail(err)
		}
		fmt.Println("ok: this kernel loads xleaf's XDP program and maps")
	case *reset:
		if err := dataplane.Remove(*pinPath); err != nil {
			fail(err)
		}
		slog.Info("data path removed", "pin-path", *pinPath)
	default:
		fmt.Fprintln(os.Stderr, "xleafd: the control agent (--config, BGP EVPN) is not built yet; this build offers --probe and --reset-dataplane")
		flag.Usage()
		os.Exit(2)
	}
}

func runProbe(pinPath string) error {
	scratch := pinPath + "-probe"
	defer dataplane.Remove(scratch)
	dp, err := dataplane.Open(dataplane.Options{PinPath: scratch})
	if err != nil {
		return err
	}
	return dp.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "xleafd:", err)
	os.Exit(1)
}
