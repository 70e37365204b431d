# imcd build targets. GO is a toolchain new enough for go.mod (installed from
# the Go module proxy by scripts/ensure-go.sh when the machine has none).
GO       ?= $(shell scripts/ensure-go.sh)
FUZZTIME ?= 20s
BENCHTIME ?= 1s

.PHONY: all build test run bench fuzz lint clean demo

all: build

build:
	$(GO) build -o bin/imcd ./cmd/imcd

# The whole suite, installing and starting MariaDB/PostgreSQL as needed.
test:
	scripts/test.sh

run:
	scripts/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./pkg/...

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
	@out=$$(gofmt -l cmd pkg); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@if command -v staticcheck >/dev/null; then staticcheck ./...; \
	else echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

clean:
	rm -rf bin var
