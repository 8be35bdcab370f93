# xleaf: build, test, generate. Run the tests as root (BPF, XDP, netns).
# sudo's PATH often lacks Go's own directory: fall back to where Go's
# tarball installs.
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)
# The fuzzer's budget in make test is a count of inputs (about 20 s here):
# a duration races Go's fuzzing coordinator at its deadline, which then
# fails the run with "context deadline exceeded" and no failing input
# (golang/go#75804; it failed one make test on 2026-12-06).
FUZZTIME ?= 30000x
# A failing benchmark fails make bench, though its output goes on to the report.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all deps build lab lab-down lab-stress test bench-quick fuzz generate check-generated bench clean release install uninstall deb

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

# Every test, the root-only BPF and netns ones included, the RIB's again
# under the race detector (an audit reads while a configuration applies),
# plus a bounded run of the fuzzer that holds the XDP program to the
# reference model. The control agent's own tests run first as nobody: they
# must not need root.
test: deps
	$(GO) vet ./...
	GO=$(GO) ./.ci/unprivileged
	$(GO) test -count=1 ./...
	CC=clang $(GO) test -race -count=1 ./control/rib/
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
	{ $(GO) test -run '^$$' -bench 'XDP|Harness|ReplaceTable|ReadTable|Verify|Lookup|RouteChange|Underlay|RIBLoad' -count 3 -benchtime 3x -json ./bench/ && \
	  $(GO) test -run '^$$' -bench 'PacketRate|BGPScale|BGPSender' -benchtime 1x -timeout 60m -json ./bench/; } | $(GO) run ./bench/report

# A few minutes: the small table, the packet rate and 100k routes. Its
# report goes to bench/results/quick/ (not committed), so it never
# replaces a full run's.
bench-quick:
	$(GO) test -run '^$$' -bench 'XDP/routes=1k|Harness|ReplaceTable|PacketRate|BGPScale/routes=100k' -benchtime 1x -json ./bench/ | $(GO) run ./bench/report -dir bench/results/quick

# Installing on a leaf: `sudo make install` (PREFIX=/usr/local; DESTDIR for
# staging), `sudo make uninstall`, or `make deb` for a Debian package
# (dist/deb/build). See "Running on a leaf" in the README.
VERSION ?= $(shell dist/version)
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR = $(PREFIX)/share/doc/xleaf
COMPLETIONDIR = $(PREFIX)/share/bash-completion/completions
SYSCONFDIR ?= /etc
LDFLAGS = -s -w -X main.version=$(VERSION)
# Static, reproducible binaries: no libc to depend on.
RELEASE = CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

release:
	$(RELEASE) -o bin/release/ ./cmd/xleafd ./cmd/xleafctl

# The files of an installation, under $(DESTDIR). The configuration is
# installed only where none is: an operator's is never replaced.
install: release
	install -D -m 0755 bin/release/xleafd $(DESTDIR)$(BINDIR)/xleafd
	install -D -m 0755 bin/release/xleafctl $(DESTDIR)$(BINDIR)/xleafctl
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g; s|@DOCDIR@|$(DOCDIR)|g' dist/xleafd.service > $(DESTDIR)$(UNITDIR)/xleafd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/xleafd.service
	install -D -m 0644 dist/xleafctl.bash $(DESTDIR)$(COMPLETIONDIR)/xleafctl
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 dist/xleaf.conf $(DESTDIR)$(DOCDIR)/examples/xleaf.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/xleaf
	[ -e $(DESTDIR)$(SYSCONFDIR)/xleaf/xleaf.conf ] || install -m 0644 dist/xleaf.conf $(DESTDIR)$(SYSCONFDIR)/xleaf/xleaf.conf
	@echo "installed xleaf $(VERSION) under $(DESTDIR)$(PREFIX); then: systemctl daemon-reload && systemctl enable --now xleafd"

# Everything install put there but the configuration (yours now).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/xleafd $(DESTDIR)$(BINDIR)/xleafctl $(DESTDIR)$(UNITDIR)/xleafd.service \
		$(DESTDIR)$(COMPLETIONDIR)/xleafctl $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/examples/xleaf.conf
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "removed xleaf from $(DESTDIR)$(PREFIX); $(SYSCONFDIR)/xleaf stays"

# A Debian package of this tree, built with dpkg-deb alone:
# dist/deb/build/xleaf_$(VERSION)_$(ARCH).deb.
ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEBOUT ?= dist/deb/build
deb: release
	VERSION='$(VERSION)' ARCH='$(ARCH)' OUT='$(DEBOUT)' dist/deb/build.sh

clean:
	rm -rf bin dist/deb/build
