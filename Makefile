# supportgate: see README.md. `make test` is what CI runs (.ci/run).
GO ?= go
DATA ?= ./data
BIN := bin

.PHONY: all build run test deps vet lint fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN)/supportgate ./cmd/supportgate
	$(GO) build -o $(BIN)/supportgate-assist ./cmd/supportgate-assist

# Extra serve flags go in ARGS, e.g. make run ARGS="--http-addr 127.0.0.1:9443".
run: build
	$(BIN)/supportgate serve --data $(DATA) $(ARGS)

# Installs the real peers the tests use (apt-get, only what is missing).
deps:
	./.ci/deps

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

lint: vet
	@command -v staticcheck >/dev/null && staticcheck ./... || echo "staticcheck not installed; skipped"

# The whole suite with the race detector, then each fuzz target briefly.
test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...
	./.ci/fuzz

fuzz:
	FUZZTIME=$${FUZZTIME:-30s} ./.ci/fuzz

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

clean:
	rm -rf $(BIN)
