# Every test: format, vet, staticcheck and the race-enabled suite.
.PHONY: test build dev
test:
	scripts/test

build:
	scripts/build

dev:
	go run ./cmd/ghbroker dev
