// Command xleafd is the xleaf daemon: it reads the guide's NVUE
// configuration, runs BGP EVPN, and programs the XDP data path.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xleaf/xleaf/control"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/dataplane"
)

// version is set at build time (make release, make deb: -X main.version).
var version = "dev"

const usage = `usage: xleafd [flags]

xleafd runs one leaf: it reads the leaf's Cumulus configuration (the nv set
listing of nv config show -o commands, or startup.yaml), runs BGP EVPN
(GoBGP, embedded) with the fabric, and programs xleaf's XDP data path:
VXLAN terminated into each VRF, routes leaked between VRFs followed,
re-encapsulated with the route's own L3VNI or delivered to a local host.
xleafctl shows what it does (xleafctl show bgp summary).

The data path outlives xleafd: its XDP links and maps are pinned under
--pin-path, so a stopped, killed or upgraded xleafd leaves the leaf
forwarding, and the next start takes the same state over (SIGTERM stops it
gracefully: its BGP neighbours keep its routes). SIGHUP re-reads the
configuration and applies the difference.

Runs as root (BPF, XDP, netlink, BGP on port 179). Under systemd:
systemctl enable --now xleafd, with /etc/xleaf/xleaf.conf.

Examples:
  xleafd --check-config /etc/xleaf/xleaf.conf   validate; lists what is accepted and ignored
  xleafd --config /etc/xleaf/xleaf.conf         run
  xleafd --reset-dataplane                      detach xleaf from every port and delete its pinned maps
  xleafd --probe                                does this kernel run xleaf's XDP program?

Flags:
`

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	showVersion := flag.Bool("version", false, "print the version and exit")
	cfgPath := flag.String("config", "/etc/xleaf/xleaf.conf", "configuration: nv set command listing or startup.yaml")
	check := flag.String("check-config", "", "validate this configuration file and exit (non-zero on error); touches nothing")
	pinPath := flag.String("pin-path", dataplane.DefaultPinPath, "bpf filesystem directory of the data path's maps")
	socket := flag.String("socket", control.DefaultSocket, "unix socket for xleafctl")
	routerMAC := flag.String("router-mac", "", "router MAC (default: the system MAC)")
	bgpPort := flag.Int("bgp-port", 179, "BGP listen port; -1 to not listen")
	probe := flag.Bool("probe", false, "load the XDP program into a scratch pin path and exit: does this kernel run xleaf?")
	reset := flag.Bool("reset-dataplane", false, "detach xleaf from every interface and delete its pinned maps, then exit")
	metricsAddr := flag.String("metrics-listen", "127.0.0.1:9180", "Prometheus /metrics address; empty to disable")
	grpcAddr := flag.String("grpc", "", "enable GoBGP's gRPC API on this address (e.g. 127.0.0.1:50051) for the gobgp CLI")
	grace := flag.Duration("grace", 60*time.Second, "after a start, the longest wait for every neighbour's End-of-RIB before routes an earlier run left in the data path and the kernel, and not re-learned, are removed; also how long a restarting xleafd's BGP holds back its updates")
	fib6Routes := flag.Uint("fib6-routes", 1<<20, "the IPv6 lookup's capacity, all VRFs together (allocated as used); a full one refuses new IPv6 routes")
	fibChunks := flag.Uint("fib-chunks", 4096, "the compiled FIB's pool of 1 KiB chunks, preallocated: one per /16 holding routes longer than /16, one per /24 holding 6 or more longer routes (more than 12 runs)")
	fibSmall := flag.Uint("fib-small-chunks", 262144, "the compiled FIB's pool of 64-byte range chunks, preallocated: one per other /24 holding routes longer than /24")
	icmpRate := flag.Int("icmp-errors-per-second", 1000, "ICMP errors (time exceeded, fragmentation needed, net unreachable) each VRF may send a second per CPU, after a burst of 50; 0 sends none")
	verifyEvery := flag.Duration("verify-every", time.Minute, "how often xleafd audits the data path against the RIB by itself (xleafctl verify; xleaf_dataplane_differences), or less often when an audit takes long (at most 1/20 of a core); 0 never")
	debug := flag.Bool("debug", false, "debug logs")
	pprofOn := flag.Bool("pprof", false, "serve Go's profiler at /debug/pprof/ on the metrics address")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	if os.Getenv("JOURNAL_STREAM") != "" {
		// Under systemd, to the journal: it stamps each line itself.
		hopts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, hopts))

	switch {
	case *showVersion:
		fmt.Println("xleafd", version)
	case *check != "":
		cfg, err := config.Load(*check)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, ig := range cfg.Ignored {
			fmt.Printf("%s: accepted and ignored: %q: %s\n", ig.Pos, "nv set "+ig.Key, ig.Reason)
		}
		fmt.Printf("%s: ok: %d VRFs, %d BGP neighbours\n", *check, len(cfg.VRFs), len(cfg.Default.Neighbors))
	case *probe:
		if err := runProbe(*pinPath); err != nil {
			fail(err)
		}
		fmt.Println("ok: this kernel loads xleaf's XDP program and maps")
	case *reset:
		if err := dataplane.Remove(*pinPath); err != nil {
			fail(err)
		}
		log.Info("data path removed", "pin-path", *pinPath)
	default:
		icmp := *icmpRate
		if icmp == 0 {
			icmp = -1 // Options' 0 is the default
		}
		verify := *verifyEvery
		if verify == 0 {
			verify = -1 // Options' 0 is the default
		}
		opts := control.Options{BGPPort: int32(*bgpPort), GRPC: *grpcAddr, Grace: *grace, ICMPErrorsPerSecond: icmp, Log: log, Version: version, VerifyEvery: verify}
		dpOpts := dataplane.Options{PinPath: *pinPath, FIBChunks: uint32(*fibChunks), FIBSmallChunks: uint32(*fibSmall), FIB6Routes: uint32(*fib6Routes)}
		if err := run(log, *cfgPath, dpOpts, *socket, *routerMAC, opts, *metricsAddr, *pprofOn); err != nil {
			fail(err)
		}
	}
}

func run(log *slog.Logger, cfgPath string, dpOpts dataplane.Options, socket, routerMAC string, opts control.Options, metricsAddr string, pprofOn bool) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	for _, ig := range cfg.Ignored {
		log.Info("configuration key accepted and ignored", "at", ig.Pos.String(), "key", ig.Key, "reason", ig.Reason)
	}
	if routerMAC != "" {
		if opts.RouterMAC, err = net.ParseMAC(routerMAC); err != nil {
			return fmt.Errorf("--router-mac: %w", err)
		}
	}
	dp, err := dataplane.Open(dpOpts)
	if err != nil {
		return err
	}
	defer dp.Close() // the pinned data path keeps forwarding
	agent, err := control.NewAgent(cfg, dp, opts)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reload := func(ctx context.Context) error {
		if err := agent.Reload(ctx, cfgPath); err != nil {
			log.Error("reload", "file", cfgPath, "err", err)
			return err
		}
		log.Info("configuration applied", "file", cfgPath)
		return nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			reload(ctx)
		}
	}()
	go func() {
		if err := agent.Serve(ctx, socket, reload); err != nil {
			log.Error("xleafctl socket", "err", err)
		}
	}()
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(agent.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		mux.Handle("/", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if pprofOn {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		}
		srv := &http.Server{Addr: metricsAddr, Handler: mux}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics", "err", err)
			}
		}()
		defer srv.Close()
	}
	log.Info("xleafd running", "version", opts.Version, "config", cfgPath, "socket", socket, "metrics", metricsAddr)
	if err := agent.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
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
