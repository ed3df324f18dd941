package libvirt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/actlog"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// WriteArtefacts writes the guest's domain.xml, its cloud-init seed
// (cloud_image) with a host key made for it, and ssh.sh. It needs the
// deployment's SSH key under dir (the engine makes it first).
func (d *Driver) WriteArtefacts(ctx context.Context, st *topology.State, g *topology.Guest, out *atomicfile.Root, log actlog.Log) error {
	dir := out.Dir()
	spec, err := specOf(g)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := sshkey.Load(dir)
	if err != nil {
		return err
	}
	// generate-artefacts is refused while the deployment is up, so a
	// console port in use here is another program's.
	if onMain(st, g) {
		if err := checkTTYPort(g); err != nil {
			return err
		}
	}
	p := d.pathsOf(dir, st.Deployment, g)
	// Folders QEMU opens files in (the seed) must be searchable by its
	// unprivileged user; the disks folder is made at up.
	for _, d := range []string{filepath.Dir(p.dir), p.dir} {
		if err := out.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	dom, err := buildDomain(st, g, p, key.Authorized, d.opts.Instance)
	if err != nil {
		return err
	}
	xml, err := dom.Marshal()
	if err != nil {
		return fmt.Errorf("guest %s: domain XML: %w", g.Name, err)
	}
	if err := out.Write(p.domainXML, []byte(xml+"\n"), 0o644); err != nil {
		return err
	}
	wrote := []string{rel(dir, p.domainXML)}

	if spec.Boot == topology.BootCloudImage {
		hostKey, err := ensureHostKey(out, p.hostKey, g.Name)
		if err != nil {
			return err
		}
		seed, err := cloudSeed(st, g, key.Authorized, hostKey)
		if err != nil {
			return err
		}
		if err := out.Write(p.seed, seed, 0o644); err != nil {
			return err
		}
		wrote = append(wrote, rel(dir, p.seed))
		if spec.Context != "" {
			tarball, err := contextTar(st.Project, spec.Context)
			if err != nil {
				return fmt.Errorf("guest %s: %w", g.Name, err)
			}
			if err := out.Write(p.contextTar, tarball, 0o600); err != nil {
				return err
			}
			wrote = append(wrote, rel(dir, p.contextTar))
		} else if err := out.Remove(p.contextTar); err != nil {
			return err
		}
	} else {
		for _, f := range []string{p.seed, p.hostKey, p.hostKey + ".pub", p.contextTar} {
			if err := out.Remove(f); err != nil {
				return err
			}
		}
	}
	if err := out.Write(p.sshHelper, []byte(sshHelper(g)), 0o755); err != nil {
		return err
	}
	wrote = append(wrote, rel(dir, p.sshHelper))
	log.Printf("guest %s: wrote %s", g.Name, strings.Join(wrote, ", "))
	return nil
}

// hostKeyPair is a guest's SSH host key: the private key in OpenSSH's
// format, as cloud-init's ssh_keys takes it, and its signer.
type hostKeyPair struct {
	pem    []byte
	signer ssh.Signer
}

// ensureHostKey returns the SSH host key generate-artefacts made for a
// guest, making it the first time: the seed hands it to cloud-init, and the
// server pins it.
func ensureHostKey(out *atomicfile.Root, path, comment string) (hostKeyPair, error) {
	if data, err := topology.ReadRegularFile(path, 64<<10); err == nil {
		if s, err := ssh.ParsePrivateKey(data); err == nil {
			return hostKeyPair{pem: data, signer: s}, nil
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return hostKeyPair{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return hostKeyPair{}, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return hostKeyPair{}, err
	}
	data := pem.EncodeToMemory(block)
	if err := out.Write(path, data, 0o600); err != nil {
		return hostKeyPair{}, err
	}
	if err := out.Write(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return hostKeyPair{}, err
	}
	return hostKeyPair{pem: data, signer: signer}, nil
}

// sshHelper is a script that logs in to the guest the way the server does.
func sshHelper(g *topology.Guest) string {
	host := "root@" + strings.Trim(sshHost(g), "[]")
	return fmt.Sprintf(`#!/bin/sh
# Log in to guest %s as the TestbedOS server does: with the deployment's key,
# over the IPv6 link-local address of its first NIC on the switch's bridge.
# Extra arguments are passed to ssh (a command to run, for example).
here=$(cd "$(dirname "$0")" && pwd)
exec ssh -i "$here/../../%s/%s" -o UserKnownHostsFile="$here/known_hosts" \
	-o StrictHostKeyChecking=accept-new %s "$@"
`, g.Name, sshkey.Dir, sshkey.PrivateKey, host)
}

func rel(base, path string) string {
	if r, err := filepath.Rel(base, path); err == nil {
		return r
	}
	return path
}
