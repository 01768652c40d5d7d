// Package deploy holds the tests of byok's container image (the repository's
// Dockerfile) and Helm chart (helm/byok). It is a Go module of its own so
// that the main module does not pull in Helm and Kubernetes.
//
//	cd deploy && go test ./...
//
// The tests decode the chart's configuration with byok's own config
// package (go.mod replaces github.com/openbyok/byok with ..), so a change
// of the main module's go.mod may need `go mod tidy` here too.
package deploy
