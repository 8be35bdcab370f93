// Command xleafctl shows what xleafd is doing and applies configuration.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/xleaf/xleaf/control"
)

// version is set at build time (make release, make deb: -X main.version).
var version = "dev"

func main() {
	socket := flag.String("socket", control.DefaultSocket, "xleafd's socket")
	output := flag.String("o", "", "output format: json")
	showVersion := flag.Bool("version", false, "print xleafctl's version and exit (show version: xleafd's)")
	flag.Usage = func() {
		fmt.Fprint(os.Stderr, "usage: xleafctl [--socket PATH] [-o json] COMMAND\n\n"+
			"Asks the running xleafd (over its socket) what it does, in FRR's layouts, or\n"+
			"in JSON with -o json; VRF is a VRF's name as the configuration has it.\n\n"+
			"Commands:\n"+control.Usage()+"\nFlags:\n")
		flag.PrintDefaults()
		fmt.Fprint(os.Stderr, "\nExamples:\n  xleafctl show route vrf RED\n  xleafctl -o json show bgp summary\n"+
			"  xleafctl config apply      (as systemctl reload xleafd does)\n")
	}
	flag.Parse()
	if *showVersion {
		fmt.Println("xleafctl", version)
		return
	}
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	// xleafd answers from the same table, so a command unknown here is
	// unknown there too: no need to ask it.
	cmd, _, ok := control.Match(flag.Args())
	if !ok {
		fmt.Fprintf(os.Stderr, "xleafctl: unknown command %q\n", strings.Join(flag.Args(), " "))
		flag.Usage()
		os.Exit(2)
	}
	data, err := control.Call(*socket, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "xleafctl:", err)
		os.Exit(1)
	}
	if *output == "json" {
		var v any
		json.Unmarshal(data, &v)
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return
	}
	if err := cmd.Text(os.Stdout, data); err != nil {
		fmt.Fprintln(os.Stderr, "xleafctl:", err)
		os.Exit(1)
	}
}
