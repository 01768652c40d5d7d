// Package deploy holds the tests of byok's container image (the repository's
// Dockerfile) and Helm chart (helm/byok). It is a Go module of its own so
// that the main module does not pull in Helm and Kubernetes.
//
//	cd deploy && go test ./...
package deploy
