// Command sshd is the SSH server of the TestbedOS test guest image
// (test/guestimage). It is built static (CGO_ENABLED=0) and started by the
// guest's init. It only knows public-key authentication, and "exec" and
// pty-less "shell" requests on session channels, run through /bin/sh as the
// server's own user; stdin is relayed, so `ssh vm sh -s < script` works.
//
//	sshd -listen :22 -authorized-keys /etc/tb/authorized_keys \
//	     -host-key /etc/tb/ssh_host_ed25519_key -ready-file /run/tb/sshd.ready
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
)

func main() {
	listen := flag.String("listen", ":22", "address to listen on")
	authKeys := flag.String("authorized-keys", "/etc/tb/authorized_keys", "authorized_keys file")
	hostKey := flag.String("host-key", "", "host private key file, generated (ed25519) when missing; empty: a new key each start")
	readyFile := flag.String("ready-file", "", "file written (with the listen address) once listening")
	shell := flag.String("shell", "/bin/sh", "shell that runs commands")
	verbose := flag.Bool("v", false, "log every connection")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("tb-sshd: ")

	if err := run(*listen, *authKeys, *hostKey, *readyFile, *shell, *verbose); err != nil {
		log.Fatal(err)
	}
}

func run(listen, authKeys, hostKey, readyFile, shell string, verbose bool) error {
	data, err := os.ReadFile(authKeys)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	keys, err := ParseAuthorizedKeys(data)
	if err != nil {
		return fmt.Errorf("%s: %v", authKeys, err)
	}
	if len(keys) == 0 {
		log.Printf("warning: no authorized keys in %s: nobody can log in", authKeys)
	}
	signer, err := LoadOrCreateHostKey(hostKey)
	if err != nil {
		return fmt.Errorf("host key: %v", err)
	}
	srv := &Server{AuthorizedKeys: keys, HostKey: signer, Shell: shell}
	if verbose {
		srv.Logf = log.Printf
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if readyFile != "" {
		if err := os.MkdirAll(filepath.Dir(readyFile), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(readyFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	return srv.Serve(ln)
}
