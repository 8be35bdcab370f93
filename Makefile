# xleaf: build, test, generate. Run the tests as root (BPF, XDP, netns).
# sudo's PATH often lacks Go's own directory: fall back to where Go's
# tarball installs.
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)
FUZZTIME ?= 20s
# A failing benchmark fails make bench, though its output goes on to the report.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all deps build lab lab-down lab-stress test bench-quick fuzz generate check-generated bench clean

all: build

# The Debian packages the build, the lab and the tests need, installed
# when missing (shared with CI); instant when all are there.
deps:
	@./.ci/deps

build:
	$(GO) build -o bin/ ./cmd/... ./test/lab/xleaflab

# The main job: the guide's two-site fabric in network namespaces, every
# switch running xleafd, traffic across every leaked VRF; it stays up.
lab: deps build
	./bin/xleaflab up

lab-down: build
	./bin/xleaflab down

# N bring-ups of the lab from nothing, each timed to the guide's tables,
# then DCI link flaps and an agent restart under a probe flow; fails if a
# bring-up does not converge or a path stays dead.
N ?= 20
lab-stress: deps build
	./bin/xleaflab stress -n $(N)

# Every test, the root-only BPF and netns ones included, plus a bounded run
# of the fuzzer that holds the XDP program to the reference model. The
# control agent's own tests run first as nobody: they must not need root.
test: deps
	$(GO) vet ./...
	GO=$(GO) ./.ci/unprivileged
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzXDPMatchesModel$$' -fuzztime $(FUZZTIME) ./dataplane/

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzXDPMatchesModel$$' -fuzztime 10m ./dataplane/

# bpf2go compiles bpf/ into dataplane/xleaf_bpfel.{go,o} (and the benchmarks'
# floor program into bench/floor_bpfel.{go,o}); all are committed.
generate: deps
	cd dataplane && $(GO) generate ./...
	cd bench && $(GO) generate ./...

# CI: regenerate and fail if the committed output differs.
check-generated: generate
	@git diff --exit-code -- dataplane/xleaf_bpfel.go dataplane/xleaf_bpfel.o bench/floor_bpfel.go bench/floor_bpfel.o || \
		{ echo "generated BPF output is stale: run 'make generate' and commit"; exit 1; }

# Benchmarks and their report: bench/results/<date>-<host>.{json,md,svg,log}.
# Per-packet and table costs run three times (the report gives the median
# and the range); the packet-rate and route-scale runs repeat inside
# themselves (rounds; one announce and one withdrawal) and run once.
bench:
	{ $(GO) test -run '^$$' -bench 'XDP|Harness|ReplaceTable|Lookup|RouteChange|Underlay' -count 3 -benchtime 3x -json ./bench/ && \
	  $(GO) test -run '^$$' -bench 'PacketRate|BGPScale' -benchtime 1x -timeout 60m -json ./bench/; } | $(GO) run ./bench/report

# A few minutes: the small table, the packet rate and 100k routes. Its
# report goes to bench/results/quick/ (not committed), so it never
# replaces a full run's.
bench-quick:
	$(GO) test -run '^$$' -bench 'XDP/routes=1k|Harness|ReplaceTable|PacketRate|BGPScale/routes=100k' -benchtime 1x -json ./bench/ | $(GO) run ./bench/report -dir bench/results/quick

clean:
	rm -rf bin
