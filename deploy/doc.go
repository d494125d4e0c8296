// Package deploy holds ghbroker's Kubernetes manifests (kustomize bases and
// overlays), gateway configuration examples and their tests. It has no Go
// code of its own: its tests render every kustomization, decode every
// object strictly, validate custom resources against the upstream CRD
// schemas, and check that the manifests, the docs and the binary agree
// (ports, probe paths, config keys, URLs). See docs/kubernetes.md.
package deploy
