// Package repo holds the checks of the repository itself, run by `go test ./test/repo`:
// docs/reference.md against the code (every flag, annotation, metric and Event reason), the words
// of docs, comments, manifests and test names (they speak about the product, not about how the
// work was organised), and a doc comment on every package.
package repo
