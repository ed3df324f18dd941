// Package archdoc holds the test that keeps docs/architecture.md's picture
// of the packages true: the arrows between this module's packages are
// generated from the Go import graph, and the test fails when they differ.
package archdoc
