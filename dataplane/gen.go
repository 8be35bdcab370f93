package dataplane

// bpf2go compiles bpf/xleaf.c and writes the Go bindings and object next
// to this file. The clang flags are pinned here.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I../bpf/include -I/usr/include/x86_64-linux-gnu" -target bpfel -type iface -type vrf -type lpm_key -type lpm6_key -type fib6_key -type route -type nexthop -type nhg -type neigh_key -type neigh6_key -type neigh -type counter -type event -type reason -type route_kind -type iface_role -type event_kind -type trace_log -type trace_step -type trace_kind -type trace_vni -type trace_underlay xleaf ../bpf/xleaf.c

// The same program built to explain one packet (bpf/trace.h): loaded only
// when asked (Dataplane.Explain), never to forward.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -DXLEAF_TRACE -I../bpf/include -I/usr/include/x86_64-linux-gnu" -target bpfel xleaftrace ../bpf/xleaf.c
