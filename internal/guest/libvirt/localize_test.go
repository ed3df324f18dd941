package libvirt

import (
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// TestLocalizeDomainOfAnotherHost: a domain generate-artefacts wrote on the
// main, with the main's folders and instance, gets this host's files (disk,
// console log, seed, pinned kernel and initrd) and this server's mark when
// it is defined here; nothing of the main's folders is left in it.
func TestLocalizeDomainOfAnotherHost(t *testing.T) {
	for _, boot := range []string{topology.BootKernel, topology.BootCloudImage} {
		t.Run(boot, func(t *testing.T) {
			st, g := testState(t)
			g.Libvirt.Boot = boot
			if boot == topology.BootCloudImage {
				g.Libvirt.Kernel, g.Libvirt.Initrd = "", ""
			}
			onMain := New(Options{DisksDir: "/main/disks", Instance: "main-instance"})
			dom, err := buildDomain(st, g, onMain.pathsOf("/main/generated/lab", "lab", g), "", "main-instance")
			if err != nil {
				t.Fatal(err)
			}
			// On the client the spec names the pushed copies.
			local := *g
			spec := *g.Libvirt
			local.Libvirt = &spec
			pins := pinnedFiles{}
			if boot == topology.BootKernel {
				spec.Kernel, spec.Initrd = "/client/cache/k", "/client/cache/i"
				pins[spec.Kernel], pins[spec.Initrd] = "/client/work/lab/libvirt/vm1/.pinned/kernel", "/client/work/lab/libvirt/vm1/.pinned/initrd"
			}
			onClient := New(Options{DisksDir: "/client/disks", Instance: "client-instance"})
			dep := guest.Deployment{Name: "lab"}
			p := onClient.pathsOf("/client/work/lab", "lab", &local)
			onClient.localize(dom, dep, &local, p, pins)
			xml, err := dom.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(xml, "/main/") || strings.Contains(xml, "/p/") || strings.Contains(xml, "main-instance") {
				t.Errorf("the main's folders or instance are left:\n%s", xml)
			}
			want := []string{"/client/disks/lab/vm1.qcow2", "/client/work/lab/libvirt/vm1/console.log", `server="client-instance"`}
			if boot == topology.BootKernel {
				want = append(want, "<kernel>/client/work/lab/libvirt/vm1/.pinned/kernel</kernel>", "<initrd>/client/work/lab/libvirt/vm1/.pinned/initrd</initrd>")
			} else {
				want = append(want, "/client/work/lab/libvirt/vm1/seed.img")
			}
			for _, w := range want {
				if !strings.Contains(xml, w) {
					t.Errorf("the domain lacks %s:\n%s", w, xml)
				}
			}
		})
	}
}
