// Package sshkey keeps the SSH key pair of a deployment: generate-artefacts
// makes it once (artefacts/ssh/id_ed25519, 0600, and id_ed25519.pub), guests
// are given the public key, and the server logs in to them with the private
// one to run setup scripts. Researchers can use it by hand too:
// ssh -i artefacts/ssh/id_ed25519 root@GUEST.
package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/atomicfile"
)

// File names under the artefacts folder.
const (
	Dir        = "ssh"
	PrivateKey = "id_ed25519"
	PublicKey  = "id_ed25519.pub"
)

// Key is a deployment's key pair.
type Key struct {
	Signer ssh.Signer
	// Authorized is the public key as an authorized_keys line.
	Authorized string
	// Path is the private key file.
	Path string
}

// Path is the private key file of the artefacts folder artefacts.
func Path(artefacts string) string { return filepath.Join(artefacts, Dir, PrivateKey) }

// Ensure returns the key of the artefacts folder out, making it if there is
// none or the one there cannot be read. comment ends the public key line.
func Ensure(out *atomicfile.Root, comment string) (*Key, error) {
	k, err := Load(out.Dir())
	if err == nil {
		return k, nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	if err := out.MkdirAll(Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	path := filepath.Join(out.Dir(), Dir, PrivateKey)
	if err := out.Write(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	line := authorizedLine(signer.PublicKey(), comment)
	if err := out.Write(filepath.Join(Dir, PublicKey), []byte(line+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	return &Key{Signer: signer, Authorized: line, Path: path}, nil
}

// Load reads the key of the artefacts folder; a missing key is an error
// wrapping fs.ErrNotExist.
func Load(artefacts string) (*Key, error) {
	path := Path(artefacts)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("deployment SSH key %s: %w (run generate-artefacts)", path, err)
		}
		return nil, fmt.Errorf("deployment SSH key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("deployment SSH key %s: %w", path, err)
	}
	comment := ""
	if pub, err := os.ReadFile(filepath.Join(artefacts, Dir, PublicKey)); err == nil {
		if _, c, _, _, err := ssh.ParseAuthorizedKey(pub); err == nil {
			comment = c
		}
	}
	return &Key{Signer: signer, Authorized: authorizedLine(signer.PublicKey(), comment), Path: path}, nil
}

func authorizedLine(pub ssh.PublicKey, comment string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		line += " " + comment
	}
	return line
}
