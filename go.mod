module github.com/xleaf/xleaf

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0
	github.com/google/go-cmp v0.7.0
	github.com/google/gopacket v1.1.19
	golang.org/x/sys v0.43.0
)

require github.com/vishvananda/netns v0.0.5
