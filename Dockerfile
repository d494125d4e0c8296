# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t ghbroker .
# The build step runs scripts/build, the same command CI runs.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN VERSION=${VERSION} COMMIT=${COMMIT} scripts/build /out/ghbroker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ghbroker /usr/local/bin/ghbroker
USER nonroot:nonroot
EXPOSE 8080 8081 9001
ENTRYPOINT ["/usr/local/bin/ghbroker"]
CMD ["serve", "--config", "/etc/ghbroker/config.yaml"]
