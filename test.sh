#!/usr/bin/env bash
# Runs the whole test suite: vet, then the packages that share state between
# goroutines under the race detector, then everything else (codecs, config, tools, and
# the process-level end-to-end tests with kcat and the python clients).
set -euo pipefail
cd "$(dirname "$0")"
# kcat and the python clients (Debian packages) are installed first when missing,
# so this command passes on a fresh machine as it stands.
.ci/deps
go vet ./...
race=(./internal/group/... ./internal/log/... ./internal/partition/... ./internal/broker/...
      ./internal/handler/... ./internal/server/... ./internal/metadata/... ./internal/bufpool/...
      ./internal/vfs/... ./internal/ratelog/... ./internal/quorum/... ./internal/console/...
      ./internal/controller/... ./internal/replication/...)
go test -race -count=1 -timeout 15m "${race[@]}"
go test -count=1 -timeout 15m $(go list ./... | grep -v -e /internal/group -e /internal/log \
  -e /internal/partition -e /internal/broker -e /internal/handler -e /internal/server \
  -e /internal/metadata -e /internal/bufpool -e /internal/vfs -e /internal/ratelog -e /internal/quorum -e /internal/console \
  -e /internal/controller -e /internal/replication -e /test/chaos)
# franz-go's own integration tests against a 3-node cluster (docs/cluster.md; about a
# minute of test time with 20,000 records per test).
test/clients/franz-go-suite
# sarama's own functional tests against 5 nodes behind toxiproxy, in a network namespace
# of their own (docs/cluster.md; about 3 minutes).
test/clients/sarama-suite
# The short fault battery (README, "Fault battery") last and alone: it
# measures outages, so it should not share the two cores with other tests.
go test -count=1 -timeout 10m -v ./test/chaos
