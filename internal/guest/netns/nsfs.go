package netns

import "github.com/testbedos/testbedos/internal/net/namespace"

// nsID identifies a namespace: the inode of its nsfs file, which
// /proc/PID/ns/net of each member process names too. All namespaces live in
// the one nsfs, so the inode alone is unique.
type nsID uint64

func netnsPath(name string) string { return namespace.Path(name) }
