# imcd build targets. GO is a toolchain new enough for go.mod (installed from
# the Go module proxy by scripts/ensure-go.sh when the machine has none).
GO       ?= $(shell scripts/ensure-go.sh)
FUZZTIME ?= 20s
BENCHTIME ?= 1s

.PHONY: all build deb test run bench bench-opensips fuzz lint clean demo

all: build

# bin/imcd, static, with its version stamped (imcd -version; scripts/version.sh).
build:
	GO=$(GO) scripts/build.sh bin/imcd

# The Debian package, var/deb/imcd_<version>_<arch>.deb (scripts/deb/;
# internal/debtest installs it). Needs dpkg-deb (every Debian has it).
deb:
	GO=$(GO) scripts/deb/build.sh var/deb

# The whole suite, installing and starting MariaDB/PostgreSQL as needed.
test:
	scripts/test.sh

run:
	scripts/run.sh

# Everything docs/benchmarks.md reports, into var/bench/: the micro-benchmarks
# (bench-micro), imcbench driving the real imcd over its real sockets (fan-out,
# latency, commands on SQLite and MariaDB, scale; IMCBENCH_FLAGS adds flags,
# e.g. -quick), then a CPU and allocation profile of the fan-out. About 5
# minutes on 2 cores.
bench:
	$(GO) build -o bin/imcd ./cmd/imcd
	@$(MAKE) --no-print-directory bench-micro
	$(GO) run ./cmd/imcbench -imcd bin/imcd -markdown var/bench/imcbench.md $(IMCBENCH_FLAGS)
	$(GO) test -run '^$$' -bench 'FanoutInProcess/members=100/stream' -benchtime 1000000x \
		-cpuprofile var/bench/cpu.pprof -memprofile var/bench/mem.pprof -o var/bench/imcbench.test ./cmd/imcbench
	$(GO) tool pprof -top -nodecount 30 -ignore 'cmd/imcbench\.' var/bench/imcbench.test var/bench/cpu.pprof > var/bench/cpu-top.txt
	$(GO) tool pprof -top -nodecount 15 -sample_index=alloc_space -ignore 'cmd/imcbench\.' var/bench/imcbench.test var/bench/mem.pprof > var/bench/alloc-top.txt
	@echo "== imcd's CPU profile (fan-out, 100-member rooms; sink and generator left out): var/bench/cpu-top.txt"
	@sed -n '1,25p' var/bench/cpu-top.txt
	@echo "== tables: var/bench/imcbench.md, micro-benchmarks: var/bench/micro.txt, profiles: var/bench/*.pprof"

# The side-by-side ladder through a real OpenSIPS: native imc and imcd in one
# OpenSIPS (the project's fragment), a room of 11, native and imcd steps
# alternating (docs/benchmarks.md). OPENSIPS is its binary
# (scripts/real-opensips.sh prints one when this machine has a build). About
# 6 minutes; not run by CI.
bench-opensips:
	@if [ -z "$(OPENSIPS)" ]; then \
		echo "bench-opensips needs a real OpenSIPS: make bench-opensips OPENSIPS=.../sbin/opensips"; \
		echo "(scripts/real-opensips.sh prints one when this machine has a build of it)"; exit 2; fi
	$(GO) build -o bin/imcd ./cmd/imcd
	$(GO) run ./cmd/imcbench -imcd bin/imcd -scenarios opensips -opensips $(OPENSIPS) -markdown var/bench/opensips.md $(IMCBENCH_FLAGS)

# The Go micro-benchmarks alone: JSON-RPC, command parser, engine fan-out,
# t_uac_dlg encoder, MI, store, and the whole per-delivery hot path.
.PHONY: bench-micro
bench-micro:
	@mkdir -p var/bench
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./pkg/... > var/bench/micro.txt 2>&1 || { cat var/bench/micro.txt; exit 1; }
	$(GO) test -run '^$$' -bench HotPath -benchmem -benchtime $(BENCHTIME) ./cmd/imcbench >> var/bench/micro.txt 2>&1 || { cat var/bench/micro.txt; exit 1; }
	@grep -E '^(Benchmark|pkg:)' var/bench/micro.txt

# Every fuzz target for FUZZTIME each; the saved corpora live in testdata/fuzz/.
fuzz:
	@for pkg in $$($(GO) list ./pkg/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l cmd pkg internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@if command -v staticcheck >/dev/null; then staticcheck ./...; \
	else echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

clean:
	rm -rf bin var

# imcd against the fake OpenSIPS, three scripted users, the transcript printed.
demo:
	$(GO) run ./cmd/imcdemo
