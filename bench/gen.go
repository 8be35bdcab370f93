package bench

// bpf2go compiles bpf/floor.c, a program only BenchmarkPacketRate loads
// (the "floor" path), into floor_bpfel.{go,o} here; both are committed.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I../bpf/include -I/usr/include/x86_64-linux-gnu" -target bpfel Floor ../bpf/floor.c
