// Command xleafctl shows what xleafd is doing and applies configuration.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/xleaf/xleaf/control"
	"github.com/xleaf/xleaf/control/show"
)

const usage = `usage: xleafctl [--socket PATH] [-o json] COMMAND
  show vrf VRF evpn bgp-info
  show route vrf VRF
  show bgp vrf VRF
  show bgp summary
  show counters
  config apply`

func main() {
	socket := flag.String("socket", control.DefaultSocket, "xleafd's socket")
	output := flag.String("o", "", "output format: json")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, usage) }
	flag.Parse()
	if flag.NArg() == 0 {
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
	if err := render(os.Stdout, flag.Args(), data); err != nil {
		fmt.Fprintln(os.Stderr, "xleafctl:", err)
		os.Exit(1)
	}
}

// render prints a command's data as text.
func render(w io.Writer, args []string, data json.RawMessage) error {
	switch {
	case len(args) == 5 && args[1] == "vrf":
		return text(data, func(v show.BGPInfo) error { return v.Text(w) })
	case len(args) == 4 && args[1] == "route":
		return text(data, func(v show.RouteTable) error { return v.Text(w, time.Now()) })
	case len(args) == 4 && args[1] == "bgp":
		return text(data, func(v show.BGPTable) error { return v.Text(w) })
	case len(args) == 3 && args[2] == "summary":
		return text(data, func(v show.Summary) error { return v.Text(w) })
	case len(args) == 2 && args[1] == "counters":
		return text(data, func(v show.Counters) error { return v.Text(w) })
	}
	return text(data, func(s string) error { _, err := fmt.Fprintln(w, s); return err })
}

// text decodes data as a T and prints it.
func text[T any](data json.RawMessage, print func(T) error) error {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("decode xleafd's answer: %w", err)
	}
	return print(v)
}
