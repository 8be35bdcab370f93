// Package bench measures the XDP fast path's cost per packet on each forwarding path, through BPF_PROG_TEST_RUN, with routing tables of 1k to 1M routes.
package bench
