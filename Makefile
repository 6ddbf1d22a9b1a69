# Athena Serving — every task of the project starts here.
SERVICES := polaris lbclient atom loader webgate
MODULES  := libs $(addprefix services/,$(SERVICES)) tools tools/asectl sdk/go tests
GO       ?= go

.PHONY: help build run test test-unit proto proto-tools verify verify-proto bench bench-quick vet fmt clean consul jaeger promtool chromium test-deps engines fuzz chaos images compose-test helm-test

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# --version of every binary: VERSION (git describe --tags, or dev without a tag) and the
# commit (the go command does not stamp VCS info in workspace mode). Both come from the
# checkout, so two builds of one commit stay identical.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/athenaserving/asf/libs/buildinfo.Version=$(VERSION) -X github.com/athenaserving/asf/libs/buildinfo.Commit=$(COMMIT)
# The pure-Go services are linked with a default GODEBUG that keeps the Go runtime's monitor
# thread out of its deep sleep (docs/operations.md, "Go runtime monitor"); GODEBUG in a
# process's environment overrides it. Not the loader: an in-process C engine's long calls
# would hold its P; tools/suite and compose give it to loaders without one.
RUNTIME_GODEBUG := schedtrace=2147483647
SVC_LDFLAGS := $(LDFLAGS) -X runtime.godebugDefault=$(RUNTIME_GODEBUG)

build: ## build the five service binaries and the tools into bin/ (VERSION=1.4.0 sets --version's)
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(SVC_LDFLAGS)' -o bin/ $(foreach s,$(filter-out loader,$(SERVICES)),./services/$(s)/cmd/$(s))
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./services/loader/cmd/loader
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./tools/cmd/asfrun ./tools/cmd/asedemo ./tools/cmd/asfbench ./tools/asectl/cmd/asectl

# ENGINE=path[,path...] adds your engines (a C .so, a wrapper.py or its directory, an aiges.toml, a forward spec);
# ENGINE_SERVICE=name[,name...] names their services, ENGINE_ARGS="..." adds loader flags to each.
run: build engines jaeger ## start the whole suite locally (Jaeger first, its trace API on 127.0.0.1:16686): echo, the demo engines and ENGINE=path; Ctrl-C stops it
	./bin/asfrun --bin bin $(if $(ENGINE),--engine '$(ENGINE)') $(if $(ENGINE_SERVICE),--engine-service '$(ENGINE_SERVICE)') $(if $(ENGINE_ARGS),--engine-args '$(ENGINE_ARGS)')

engines: ## build the demo engines (tts, asr, digits) into bin/engines; installs their Debian packages when root
	./scripts/engines.sh all

test: test-deps ## every module's tests, the cross-service tests, the Helm tests and the compose test
	./scripts/test.sh
	$(MAKE) helm-test
	$(MAKE) compose-test

test-unit: test-deps ## every module's tests except the cross-service ones
	./scripts/test.sh unit

test-deps: consul jaeger promtool chromium ## what the tests need beyond Go: a Consul agent, Jaeger, promtool, Chromium, the engines' packages
	./scripts/engines.sh install

consul: ## build the Consul agent v1.14.11 (for the polaris consul backend) into bin/consul
	./scripts/consul.sh

jaeger: ## build Jaeger v2 (module v1.75.0; the trace backend of make run, compose and the trace tests) into bin/jaeger
	./scripts/jaeger.sh

promtool: ## build Prometheus's promtool v0.316.0 (checks deploy/prometheus/alerts.yml in make test) into bin/promtool
	./scripts/prometheus.sh promtool

chromium: ## install Debian's chromium for the console test (when root)
	./scripts/chromium.sh

vet: ## go vet every module of go.work
	@for m in $$($(GO) list -m -f '{{.Dir}}'); do (cd $$m && $(GO) vet ./...) || exit 1; done

verify: ## gofmt, go mod tidy, go vet and staticcheck on every module of go.work, and the layering test
	./scripts/verify.sh

fmt: ## gofmt every module
	gofmt -l -w $(MODULES)

proto-tools: ## install protoc and the pinned protoc plugins into .tools/bin
	./scripts/proto-tools.sh

proto: proto-tools ## regenerate the protobuf code under libs/proto
	./scripts/proto-gen.sh

verify-proto: proto-tools ## fail if the committed protobuf code differs from `make proto`
	./scripts/verify-proto.sh

bench: build jaeger ## full benchmark run: bench/results/<timestamp>/report.md
	./scripts/bench.sh full

bench-quick: build jaeger ## one-minute benchmark subset
	./scripts/bench.sh quick

# Not part of `make test`: it takes a few minutes. CHAOS_ARGS="--only atom" runs some rows.
chaos: build ## fault table under once and stream load (kill loader/atom/lbclient/polaris, freeze a loader, NATS restart): bench/results/<timestamp>/chaos.md
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./tools/cmd/asfchaos
	./bin/asfchaos --bin bin $(CHAOS_ARGS)

fuzz: ## run every fuzz target of every module for a bounded time (FUZZTIME per target, default 10s)
	./scripts/fuzz.sh $(or $(FUZZTIME),10s)

images: ## build the container images (asf/*:dev) with deploy/images/Dockerfile on locally made bases (no registry needed)
	./scripts/images.sh

compose-test: images ## docker-compose end-to-end test: scaling, spread over replicas, the compose chaos table (skips without Docker)
	./scripts/compose-test.sh

helm-test: ## helm lint/template every chart; install, upgrade, uninstall each on a local control plane (kwok nodes)
	./deploy/helm/test/run.sh

clean: ## remove build output
	rm -rf bin .run
