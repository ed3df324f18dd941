package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// A deployment with a management network (testbed_options.management)
// has its guests' names, <guest>.<deployment>.tbos, in the main host's
// hosts file (Options.HostsFile, default /etc/hosts): one block between
// "# BEGIN testbedos <deployment>" and "# END testbedos <deployment>",
// written whole at up (the file replaced by a rename, under a lock file
// beside it, so no reader sees half of it) and removed at down. A hosts
// file needs no resolver to run and every program of the host reads it;
// netns guests, which share the host's files, resolve the names the same
// way.

// DefaultHostsFile is the hosts file the names go into.
const DefaultHostsFile = "/etc/hosts"

// NamesRecord is the block of names a deployment wrote into a hosts file.
type NamesRecord struct {
	File  string                `json:"file"`
	Names topology.ManagedNames `json:"names"`
}

// namesKey is the one entry of the names kind in a host's record.
const namesKey = "hosts"

// namesKind is the deployment's block of the host's hosts file.
type namesKind struct{}

var _ kind = namesKind{}

func (namesKind) stage() string { return "names" }

func (namesKind) held(h *HostRecord) []string {
	if h.Names == nil {
		return nil
	}
	return []string{namesKey}
}

func (namesKind) forget(h *HostRecord, _ string) { h.Names = nil }

func (namesKind) removeLimit(*Options) int { return 0 }

func (namesKind) removal(env removeEnv, h *HostRecord, _ string) removal {
	file := h.Names.File
	return removal{
		what: "names in " + file,
		noun: "hosts file block",
		run: func(ctx context.Context, host Host) (string, error) {
			_, err := writeHostsBlock(file, env.dep, nil)
			return "removed", err
		},
	}
}

func (namesKind) missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	if h.Names == nil {
		return nil, nil
	}
	data, err := os.ReadFile(h.Names.File)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if !bytes.Contains(data, []byte(hostsBlock(c.dep, h.Names.Names))) {
		return []gap{{kind: api.KindNames, name: namesKey, what: "names of the management network in " + h.Names.File}}, nil
	}
	return nil, nil
}

func (namesKind) diff(p *planned, rec *Record, st *topology.State) {
	wanted := topology.Names(st)
	for _, h := range rec.hostNames() {
		nr := rec.Hosts[h].Names
		if nr == nil {
			continue
		}
		k := hostKey{h, namesKey}
		switch {
		case len(wanted) == 0:
			p.remove(namesKind{}, k)
			p.change(api.KindNames, k, api.OpRemove, "")
		case !slices.Equal(nr.Names, wanted):
			p.change(api.KindNames, k, api.OpUpdate, "the guests' names or addresses changed")
		default:
			p.keep(api.KindNames, k)
		}
		return
	}
	if len(wanted) > 0 {
		p.change(api.KindNames, hostKey{mainOf(st), namesKey}, api.OpAdd, "")
	}
}

func (namesKind) upPart(u *upRun) upPart {
	names := topology.Names(u.st)
	if len(names) == 0 {
		return nil
	}
	return &namesUp{u: u, names: names}
}

// namesUp writes the names block of one up.
type namesUp struct {
	u     *upRun
	names topology.ManagedNames
}

func (n *namesUp) plan(ctx context.Context) (string, error) {
	return count(len(n.names), "name"), nil
}

func (n *namesUp) items() []item {
	u := n.u
	return []item{func(ctx context.Context) error {
		host, file := mainOf(u.st), u.e.opts.HostsFile
		var had bool
		u.led.edit(func(r *Record) {
			h := r.host(host)
			had = h.Names != nil
			h.Names = &NamesRecord{File: file, Names: n.names}
		})
		if err := u.led.save(ctx); err != nil {
			return err
		}
		created, err := writeHostsBlock(file, u.d.Name, n.names)
		if created && !had {
			u.made.add(func(ctx context.Context) error {
				if _, err := writeHostsBlock(file, u.d.Name, nil); err != nil {
					return err
				}
				u.led.edit(func(r *Record) { r.host(host).Names = nil })
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("names in %s: %w", file, err)
		}
		u.log.Printf("    names: %s in %s (%s, …)", count(len(n.names), "name"), file, n.names[0].Name)
		return nil
	}}
}

func (n *namesUp) forgetUnstarted(*Record) {}

// mainOf is the main host of st.
func mainOf(st *topology.State) string {
	for _, h := range st.Hosts {
		if h.Main {
			return h.Name
		}
	}
	if len(st.Hosts) > 0 {
		return st.Hosts[0].Name
	}
	return ""
}

// hostsBlock is the deployment's block of a hosts file.
func hostsBlock(dep string, names topology.ManagedNames) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# BEGIN testbedos %s\n", dep)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n.Address, n.Name)
	}
	fmt.Fprintf(&b, "# END testbedos %s\n", dep)
	return b.String()
}

// writeHostsBlock replaces the deployment's block in the hosts file with
// names (none: removes it) and reports whether there was no block before.
// The file is replaced whole by a rename, under an exclusive lock on a
// file beside it that every server takes.
func writeHostsBlock(path, dep string, names topology.ManagedNames) (created bool, err error) {
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(path), ".testbedos-hosts.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return false, err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	rest, found := cutBlock(string(old), dep)
	if len(names) > 0 {
		if rest != "" && !strings.HasSuffix(rest, "\n") {
			rest += "\n"
		}
		rest += hostsBlock(dep, names)
	}
	if rest == string(old) {
		return !found, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hosts.testbedos-")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(rest); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return !found, os.Rename(tmp.Name(), path)
}

// cutBlock returns text without the deployment's block, and whether it
// had one.
func cutBlock(text, dep string) (string, bool) {
	begin, end := "# BEGIN testbedos "+dep+"\n", "# END testbedos "+dep+"\n"
	i := strings.Index(text, begin)
	if i < 0 {
		return text, false
	}
	j := strings.Index(text[i:], end)
	if j < 0 {
		return text[:i], true
	}
	return text[:i] + text[i+j+len(end):], true
}
