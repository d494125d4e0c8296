# Every test: format, vet, staticcheck and the race-enabled suite.
.PHONY: test build dev bench soak
test:
	scripts/test

build:
	scripts/build

dev:
	go run ./cmd/ghbroker dev
bench:
	bench/load.sh

# Ten minutes of mixed traffic and floods against `ghbroker dev`; fails if
# RSS, goroutines or open files keep growing (CI runs 60 s of it).
soak:
	GHBROKER_SOAK=10m go test -tags e2e -count=1 -run TestSoak -timeout 20m -v ./e2e/
