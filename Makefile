# Every test: format, vet, staticcheck and the race-enabled suite.
.PHONY: test build dev bench
test:
	scripts/test

build:
	scripts/build

dev:
	go run ./cmd/ghbroker dev
bench:
	bench/load.sh
