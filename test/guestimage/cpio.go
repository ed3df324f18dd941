package guestimage

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// File modes of cpio entries (the S_IF* bits of stat(2)).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// entry is one file of the initramfs.
type entry struct {
	Name         string // relative, no leading slash
	Mode         uint32 // type bits | permissions
	Data         []byte // file content, or symlink target
	Major, Minor uint32 // device numbers of a device node
}

// tree is the content of an initramfs, by path.
type tree map[string]entry

func (t tree) dir(name string, perm uint32) {
	t[name] = entry{Name: name, Mode: modeDir | perm}
}

func (t tree) file(name string, perm uint32, data []byte) {
	t.parents(name)
	t[name] = entry{Name: name, Mode: modeRegular | perm, Data: data}
}

func (t tree) symlink(name, target string) {
	t.parents(name)
	t[name] = entry{Name: name, Mode: modeSymlink | 0o777, Data: []byte(target)}
}

func (t tree) charDev(name string, perm, major, minor uint32) {
	t.parents(name)
	t[name] = entry{Name: name, Mode: modeCharDev | perm, Major: major, Minor: minor}
}

func (t tree) parents(name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := t[d]; !ok {
			t.dir(d, 0o755)
		}
	}
}

// writeCPIO writes the tree as a "newc" cpio archive (the initramfs format,
// see the kernel's Documentation/driver-api/early-userspace), sorted by
// path so that parents come first and the output is reproducible. All
// files belong to root and have mtime 0.
func writeCPIO(w io.Writer, t tree) error {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countWriter{w: w}
	for i, n := range names {
		e := t[n]
		if strings.HasPrefix(n, "/") || n == "" {
			return fmt.Errorf("cpio: bad name %q", n)
		}
		if err := writeCPIOEntry(cw, uint32(i+1), e); err != nil {
			return err
		}
	}
	if err := writeCPIOEntry(cw, 0, entry{Name: "TRAILER!!!"}); err != nil {
		return err
	}
	return cw.err
}

func writeCPIOEntry(cw *countWriter, ino uint32, e entry) error {
	nlink := uint32(1)
	if e.Mode&0o170000 == modeDir {
		nlink = 2
	}
	fmt.Fprintf(cw, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.Mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(e.Name)+1, 0)
	io.WriteString(cw, e.Name)
	cw.Write([]byte{0})
	cw.pad4()
	cw.Write(e.Data)
	cw.pad4()
	return cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func (c *countWriter) pad4() {
	if r := c.n % 4; r != 0 {
		c.Write(make([]byte, 4-r))
	}
}
