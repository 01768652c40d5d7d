# syntax=docker/dockerfile:1
#
# The byok image: one static binary (CGO_ENABLED=0; the SQLite driver is pure
# Go) on a distroless base, run as uid 65532, writing nothing outside a
# mounted volume, so it runs with a read-only root filesystem.
#
#   docker build -t byok .
#   docker run --read-only -v byok-data:/var/lib/byok -v $PWD/config.yaml:/etc/byok/config.yaml:ro byok
#
# The image holds no configuration and no secret: mount the configuration at
# /etc/byok/config.yaml (or give another file after "serve --config") and the
# state, if any, under /var/lib/byok (the working directory). The Helm chart
# in deploy/helm/byok does both. deploy/dockerfile_test.go checks this file.

ARG GO_VERSION=1.26

# The build runs on the builder's platform and cross-compiles for the
# target's (docker buildx build --platform linux/amd64,linux/arm64 .).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/byok ./cmd/byok \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /out/byok /usr/local/bin/byok
# The working directory, for state when no volume is mounted; the chart
# mounts an emptyDir here.
COPY --from=build --chown=65532:65532 /out/data /var/lib/byok
WORKDIR /var/lib/byok
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["byok"]
CMD ["serve", "--config", "/etc/byok/config.yaml"]
