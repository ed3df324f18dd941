package topology

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// ErrStateMismatch: a state.json does not describe what generate-artefacts
// would have written for the deployment (it was edited, copied from another
// deployment, or the project folder changed since).
var ErrStateMismatch = errors.New("the generated state does not match the deployment")

// CheckState verifies a state before anything acts on it, though the
// server reads only its own copy: every kernel, libvirt and docker name
// must be the one derived from the deployment's name, every switch and
// interface must agree, every file the state names must lie inside project
// (after symlinks), and a name that becomes a path (a cloud image's cache
// file) must be a plain file name. A disk or ISO may also lie under one of
// imageDirs (none given: DefaultImageDirs("")). The error lists every
// problem.
func CheckState(st *State, deployment, project string, imageDirs ...string) error {
	if imageDirs == nil {
		imageDirs = DefaultImageDirs("")
	}
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if st.Deployment != deployment {
		bad("it is the state of deployment %q", st.Deployment)
	}
	if st.Project != project {
		bad("it was generated for project folder %s, not %s", st.Project, project)
	}
	if st.Prefix != Prefix(deployment) {
		bad("prefix %q, want %q", st.Prefix, Prefix(deployment))
	}
	bridges := map[string]string{}
	for _, sw := range st.Switches {
		want := BridgeName(deployment, sw.Name)
		if sw.External != nil && sw.External.Provider != "" {
			want = ProviderBridgeName(sw.External.Provider)
		}
		if sw.Bridge != want {
			bad("switch %s: bridge %q, want %q", sw.Name, sw.Bridge, want)
		}
		if want := TunnelName(deployment, sw.Name); sw.Tunnel != "" && sw.Tunnel != want {
			bad("switch %s: tunnel %q, want %q", sw.Name, sw.Tunnel, want)
		}
		bridges[sw.Name] = sw.Bridge
	}
	for _, g := range st.Guests {
		if !api.ValidName(g.Name) {
			bad("guest name %q is not a valid name", g.Name)
			continue
		}
		checkGuestNames(deployment, g, bad)
		checkGuestSources(g, bad)
		for i, ifc := range g.Interfaces {
			br, ok := bridges[ifc.Switch]
			switch {
			case !ok:
				bad("guest %s: interface %d is on unknown switch %q", g.Name, i, ifc.Switch)
			case ifc.Bridge != br:
				bad("guest %s: interface %d: bridge %q, want %q", g.Name, i, ifc.Bridge, br)
			}
			if want := HostIfName(deployment, g.Name, i); ifc.HostName != want {
				bad("guest %s: interface %d: host name %q, want %q", g.Name, i, ifc.HostName, want)
			}
			if want := InterfaceName(i); ifc.Name != want && (ifc.Switch != ManagementSwitch || ifc.Name != ManagementInterface) {
				bad("guest %s: interface %d: name %q, want %q", g.Name, i, ifc.Name, want)
			}
		}
		for _, f := range guestFiles(g) {
			if err := insideProject(project, f); err != nil {
				bad("guest %s: %v", g.Name, err)
			}
		}
		for _, f := range guestImages(g) {
			if err := insideProject(project, f); err != nil && !insideImageDir(imageDirs, f) {
				bad("guest %s: %v, nor under an image folder (%s)", g.Name, err, strings.Join(imageDirs, ", "))
			}
		}
	}
	checkRouterState(st, deployment, bridges, bad)
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: %s; run generate-artefacts again", ErrStateMismatch, deployment, strings.Join(probs, "; "))
}

func checkGuestNames(deployment string, g Guest, bad func(string, ...any)) {
	want := func(what, got, want string) {
		if got != want {
			bad("guest %s: %s %q, want %q", g.Name, what, got, want)
		}
	}
	switch g.Kind {
	case KindNetns:
		if g.Netns == nil {
			bad("guest %s: netns settings missing", g.Name)
			return
		}
		want("namespace", g.Netns.Namespace, NamespaceName(deployment, g.Name))
	case KindLibvirt:
		if g.Libvirt == nil {
			bad("guest %s: libvirt settings missing", g.Name)
			return
		}
		want("domain", g.Libvirt.Domain, DomainName(deployment, g.Name))
	case KindDocker:
		if g.Docker == nil {
			bad("guest %s: docker settings missing", g.Name)
			return
		}
		want("container", g.Docker.Container, ContainerName(deployment, g.Name))
	}
}

// checkGuestSources checks the fields of a guest that become paths or
// downloads without being project files: a cloud image's cache file name
// must be a plain file name (it is joined to the image cache), its URL an
// http or https one.
func checkGuestSources(g Guest, bad func(string, ...any)) {
	l := g.Libvirt
	if l == nil {
		return
	}
	if l.ImageName != "" && !PlainFileName(l.ImageName) {
		bad("guest %s: image name %q is not a plain file name", g.Name, l.ImageName)
	}
	if l.ImageURL != "" {
		u, err := url.Parse(l.ImageURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("guest %s: image URL %q is not an http or https URL", g.Name, l.ImageURL)
		}
	}
}

// PlainFileName: name can be joined to a folder and stays a file directly
// in it: not empty, no separator, not "." or "..", no NUL.
func PlainFileName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\\\x00") && len(name) <= 255
}

// guestFiles lists the project files a guest's state names.
func guestFiles(g Guest) []string {
	var out []string
	add := func(p string) {
		if p != "" {
			out = append(out, p)
		}
	}
	add(g.SetupScript)
	for _, s := range g.CloneScripts {
		add(s)
	}
	if d := g.Docker; d != nil {
		add(d.EnvFile)
		for _, v := range d.Volumes {
			// A volume with an empty source would mount nothing the state
			// can vouch for: report it as outside.
			if v.Source == "" {
				out = append(out, "(empty volume source)")
			}
			add(v.Source)
		}
	}
	if l := g.Libvirt; l != nil {
		for _, p := range []string{l.Kernel, l.Initrd, l.RunScript, l.Context} {
			add(p)
		}
	}
	return out
}

// guestImages are the disks and ISOs a guest boots: inside the project or
// under an image folder.
func guestImages(g Guest) []string {
	var out []string
	if l := g.Libvirt; l != nil {
		for _, p := range []string{l.DiskPath, l.ISOPath} {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// insideImageDir: path, lexically and after symlinks (when it exists),
// lies under one of dirs.
func insideImageDir(dirs []string, path string) bool {
	for _, d := range dirs {
		if !filepath.IsAbs(path) || !Within(filepath.Clean(d), filepath.Clean(path)) {
			continue
		}
		realDir, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(path)
		if err == nil && !Within(realDir, real) {
			continue
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		return true
	}
	return false
}

// insideProject: path, lexically and after symlinks (when it exists), lies
// inside project.
func insideProject(project, path string) error {
	if !filepath.IsAbs(path) || !Within(project, filepath.Clean(path)) {
		return fmt.Errorf("file %s is outside the project folder", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err == nil && !Within(project, real) {
		return fmt.Errorf("file %s leads outside the project folder (to %s)", path, real)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("file %s: %v", path, err)
	}
	return nil
}
