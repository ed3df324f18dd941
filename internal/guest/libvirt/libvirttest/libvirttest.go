// Package libvirttest helps tests that use the real libvirtd: skipping when
// it is absent, and finding and removing what a deployment left in it
// (domains, storage pools) even when a test fails half-way.
package libvirttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/testbedos/testbedos/internal/testenv"
)

// Socket is libvirtd's socket.
const Socket = "/var/run/libvirt/libvirt-sock"

// Require skips the test (fails it when TESTBEDOS_REQUIRE_INTEGRATION=1,
// see testenv) unless it runs as root and libvirtd answers with QEMU
// installed. `make test` installs and starts them
// (scripts/install-test-deps.sh, scripts/start-libvirt.sh).
func Require(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "defines libvirt domains and bridges")
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.Skip(t, "qemu-system-x86_64 is not installed (scripts/install-test-deps.sh installs it)")
	}
	l, err := connect()
	if err != nil {
		testenv.Skipf(t, "libvirtd does not answer at %s (scripts/start-libvirt.sh starts it): %v", Socket, err)
	}
	l.Disconnect()
}

func connect() (*golibvirt.Libvirt, error) {
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(Socket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, err
	}
	return l, nil
}

// Leftovers lists the domains and storage pools of a deployment: those
// named tbos.<deployment> or starting with tbos.<deployment>.
func Leftovers(deployment string) (domains, pools []string, err error) {
	l, err := connect()
	if err != nil {
		return nil, nil, err
	}
	defer l.Disconnect()
	mine := func(name string) bool {
		return name == "tbos."+deployment || strings.HasPrefix(name, "tbos."+deployment+".")
	}
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range doms {
		if mine(d.Name) {
			domains = append(domains, d.Name)
		}
	}
	ps, _, err := l.ConnectListAllStoragePools(1, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range ps {
		if mine(p.Name) {
			pools = append(pools, p.Name)
		}
	}
	sort.Strings(domains)
	sort.Strings(pools)
	return domains, pools, nil
}

// RemoveAll destroys and undefines the deployment's domains and deletes
// the volumes and pools it left. It reports what it could not remove.
func RemoveAll(deployment string) error {
	domains, pools, err := Leftovers(deployment)
	if err != nil || len(domains)+len(pools) == 0 {
		return err
	}
	l, err := connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	var errs []error
	for _, name := range domains {
		d, err := l.DomainLookupByName(name)
		if err != nil {
			continue
		}
		_ = l.DomainDestroy(d)
		if err := l.DomainUndefineFlags(d, golibvirt.DomainUndefineSnapshotsMetadata|golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram); err != nil && !golibvirt.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("undefine %s: %w", name, err))
		}
	}
	for _, name := range pools {
		p, err := l.StoragePoolLookupByName(name)
		if err != nil {
			continue
		}
		// Only the deployment's own pool holds volumes of ours; pools
		// over project folders (deep copies) hold the user's files.
		if name == "tbos."+deployment {
			vols, _, _ := l.StoragePoolListAllVolumes(p, 1, 0)
			for _, v := range vols {
				if err := l.StorageVolDelete(v, 0); err != nil {
					errs = append(errs, fmt.Errorf("delete volume %s: %w", v.Name, err))
				}
			}
		}
		if err := l.StoragePoolDestroy(p); err != nil {
			errs = append(errs, fmt.Errorf("destroy pool %s: %w", name, err))
		}
		_ = l.StoragePoolUndefine(p)
	}
	return errors.Join(errs...)
}

// WaitNoLinks waits until no link named in names exists, at most timeout:
// QEMU's taps go a moment after its domain.
func WaitNoLinks(names []string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, n := range names {
			if _, err := net.InterfaceByName(n); err == nil {
				left = append(left, n)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Context is a context for test steps that boot VMs: TCG on a loaded
// 2-core host is slow.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Stop powers a domain off without undefining it, as a guest that shut
// itself down.
func Stop(domain string) error {
	l, err := connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	d, err := l.DomainLookupByName(domain)
	if err != nil {
		return err
	}
	return l.DomainDestroy(d)
}

// DefineShutOff defines, without starting it, a bare domain called name
// with the given <metadata> content (none when empty), as another tool or
// another server would leave one.
func DefineShutOff(name, metadata string) error {
	l, err := connect()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	if metadata != "" {
		metadata = "<metadata>" + metadata + "</metadata>"
	}
	xml := fmt.Sprintf(`<domain type='qemu'><name>%s</name>%s<memory unit='MiB'>32</memory><os><type arch='x86_64'>hvm</type></os></domain>`, name, metadata)
	_, err = l.DomainDefineXML(xml)
	return err
}

// Defined reports whether a domain called name is defined.
func Defined(name string) (bool, error) {
	l, err := connect()
	if err != nil {
		return false, err
	}
	defer l.Disconnect()
	_, err = l.DomainLookupByName(name)
	if golibvirt.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
