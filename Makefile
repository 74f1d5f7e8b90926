# mqttgen: `make run` renders the example, `make test` runs every test.
# `make test` installs what the tests need (Debian packages) when missing.

GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := mosquitto mosquitto-clients python3-paho-mqtt systemd chromium openssh-server
BIN     := bin/mqttgen
EXAMPLE ?= examples/minimal

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all build install run test deps vet fuzz clean bench kube-bin

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/mqttgen

# mqttgen where the backup units and the crontab line render expects it:
# $(PREFIX)/bin/mqttgen, /usr/local/bin/mqttgen by default (generators.InstalledBinary).
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mqttgen

# The main job on the example: check it, render the broker's files into ./out,
# and run the bundled broker on them in the foreground (no Docker; Ctrl-C stops).
run: build
	$(BIN) vet $(EXAMPLE)
	$(BIN) render $(EXAMPLE) -o out
	$(BIN) serve $(EXAMPLE)

# Debian's packages the tests run against: the real Mosquitto broker and
# clients, the paho client Home Assistant uses, systemd-analyze, and
# Chromium, which opens `acl matrix --html` headless.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# go vet ./... leaves out third_party/mochi (a module of its own); the
# broker's engine is vetted through the module path go.mod replaces.
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./... github.com/mochi-mqtt/server/v2/...

# testmqtt for the conformance test (integration/brokerdiff/conformance_test.go), built in a
# scratch module: it is a tool of the tests, not a dependency in go.mod.
bin/testmqtt:
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	cd "$$d"; $(GO) mod init x >/dev/null 2>&1; \
	$(GO) get github.com/bromq-dev/testmqtt@v0.1.1; \
	$(GO) build -o "$(CURDIR)/bin/testmqtt" github.com/bromq-dev/testmqtt

# kube-apiserver and etcd for the Kubernetes tests (kube/kubetest), built once
# from the Go module proxy into a cache outside the clone and kept there
# (about 11 minutes on 2 cores the first time, nothing afterwards): the
# scratch modules in tools/kube pin k8s.io/kubernetes with every staging
# module k8s.io/X replaced by its published v0.N.M, and etcd's server. The
# tests find them at the same path (or $$MQTTGEN_KUBE_BIN).
KUBE_VERSION := 1.37.2
KUBE_BIN ?= $(or $(MQTTGEN_KUBE_BIN),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mqttgen/kube/v$(KUBE_VERSION))
kube-bin:
	@set -e; d="$(KUBE_BIN)"; \
	if [ -x "$$d/kube-apiserver" ] && [ -x "$$d/etcd" ]; then exit 0; fi; \
	mkdir -p "$$d"; echo "building kube-apiserver v$(KUBE_VERSION) and etcd into $$d (once)"; \
	(cd tools/kube/apiserver && $(GO) build -o "$$d/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver); \
	(cd tools/kube/etcd && $(GO) build -o "$$d/etcd.tmp" .); \
	mv "$$d/kube-apiserver.tmp" "$$d/kube-apiserver"; mv "$$d/etcd.tmp" "$$d/etcd"

test: deps vet bin/testmqtt kube-bin
	$(GO) test -count=1 -timeout 18m ./...

# Each fuzz target for a while (FUZZTIME=5m for longer).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Benchmarks, not part of `make test` (bench/README.md): the bundled broker
# against Debian's Mosquitto from the same rendered files, and mqttgen's own
# speed; about 8 minutes. The load generator runs on CPU 0, the brokers on
# CPU 1 (taskset). Writes bench/results/<date>.md, .json and PNG charts
# (gnuplot). BENCH_FLAGS passes flags to mqttbench (e.g. -quick, -profile DIR).
bench: deps build
	@missing=""; for p in gnuplot-nox time util-linux; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(GO) build -o bin/mqttbench ./cmd/mqttbench
	$(GO) build -o bin/mqttbench-broker ./cmd/mqttbench-broker
	taskset -c 0 bin/mqttbench run -mqttgen $(BIN) -results bench/results $(BENCH_FLAGS)

clean:
	rm -rf bin out
