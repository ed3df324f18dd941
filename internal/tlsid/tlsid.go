// Package tlsid is a host's TLS identity: the self-signed certificate made
// at first start in config/tls/, its SHA-256 fingerprint, and tls.Configs
// that trust a peer by its pinned fingerprint instead of a CA.
package tlsid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/atomicfile"
)

// ErrFingerprintMismatch: the peer's certificate is not the pinned one.
var ErrFingerprintMismatch = errors.New("certificate fingerprint mismatch")

// ErrBadFingerprint: a fingerprint string that is not a SHA-256 in hex.
var ErrBadFingerprint = errors.New("bad fingerprint")

// Files of an identity inside its folder (config/tls).
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// validity of a made certificate: hosts run for years; the pin, not the
// expiry, is what is checked.
const validity = 20 * 365 * 24 * time.Hour

// Identity is this host's certificate and key.
type Identity struct {
	Certificate tls.Certificate
	Leaf        *x509.Certificate
	// Fingerprint is Fingerprint(Leaf).
	Fingerprint string
}

// Names are what a made certificate is for (its SANs).
type Names struct {
	DNS []string
	IPs []net.IP
}

// DefaultNames are the names the server's certificate is valid for: the
// host name, localhost, the loopback addresses and ip when given.
func DefaultNames(hostname string, ip net.IP) Names {
	n := Names{DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	if hostname != "" && hostname != "localhost" {
		n.DNS = append([]string{hostname}, n.DNS...)
	}
	if ip != nil && !ip.IsLoopback() {
		n.IPs = append([]net.IP{ip}, n.IPs...)
	}
	return n
}

// LoadOrCreate reads dir/cert.pem and dir/key.pem, or makes them (ECDSA
// P-256, self-signed, key 0600) when both are absent.
func LoadOrCreate(dir string, names Names) (Identity, error) {
	id, err := Load(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Identity{}, fmt.Errorf("tls: %w", err)
	}
	certPEM, keyPEM, err := create(names, time.Now())
	if err != nil {
		return Identity{}, err
	}
	// The key first: a crash between the two writes leaves a key without a
	// certificate, which the next start reports instead of a certificate
	// whose key is lost.
	if err := atomicfile.Write(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return Identity{}, fmt.Errorf("tls: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, CertFile), certPEM, 0o644); err != nil {
		return Identity{}, fmt.Errorf("tls: %w", err)
	}
	return Load(dir)
}

// Load reads the identity in dir.
func Load(dir string) (Identity, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, cerr := os.Stat(certPath)
	_, kerr := os.Stat(keyPath)
	if errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		return Identity{}, fmt.Errorf("tls: no identity in %s: %w", dir, fs.ErrNotExist)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return Identity{}, fmt.Errorf("tls: %s: %v (remove both files to make a new certificate; clients pinned to the old one must re-join)", dir, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return Identity{}, fmt.Errorf("tls: %s: %w", certPath, err)
	}
	pair.Leaf = leaf
	return Identity{Certificate: pair, Leaf: leaf, Fingerprint: Fingerprint(leaf)}, nil
}

// LoadCertificate reads a PEM certificate file (a local server's cert.pem).
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func create(names Names, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("tls: serial: %w", err)
	}
	cn := "testbedos"
	if len(names.DNS) > 0 {
		cn = names.DNS[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the subject too: OpenSSL (OVN's southbound
		// database trusting every member's certificate in one file)
		// finds a trusted certificate by its subject, and hosts with one
		// host name would otherwise share it.
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"TestbedOS"}, SerialNumber: serial.Text(16)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names.DNS,
		IPAddresses:           names.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Fingerprint is "sha256:<64 lower-case hex>" of the certificate's DER.
func Fingerprint(cert *x509.Certificate) string { return FingerprintDER(cert.Raw) }

// FingerprintDER is Fingerprint of a DER certificate.
func FingerprintDER(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint accepts "sha256:<hex>", bare hex and colon-separated hex
// (any case) and returns the canonical "sha256:<lower-case hex>".
func ParseFingerprint(s string) (string, error) {
	v := strings.TrimSpace(s)
	if p, ok := strings.CutPrefix(strings.ToLower(v), "sha256:"); ok {
		v = p
	}
	v = strings.ToLower(strings.ReplaceAll(v, ":", ""))
	raw, err := hex.DecodeString(v)
	if err != nil || len(raw) != sha256.Size {
		return "", fmt.Errorf("%w %q: want sha256:<64 hex digits>", ErrBadFingerprint, s)
	}
	return "sha256:" + v, nil
}

// Equal compares two canonical fingerprints in constant time.
func Equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// verifyPinned checks that the leaf of rawCerts has fingerprint want.
func verifyPinned(want string) func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return fmt.Errorf("%w: the peer sent no certificate, want %s", ErrFingerprintMismatch, want)
		}
		if got := FingerprintDER(rawCerts[0]); !Equal(got, want) {
			return fmt.Errorf("%w: the peer's certificate is %s, want %s", ErrFingerprintMismatch, got, want)
		}
		return nil
	}
}

// ClientConfig trusts exactly the server whose certificate has fingerprint
// pin (canonical, see ParseFingerprint); own, when set, is presented as the
// client certificate.
func ClientConfig(pin string, own *tls.Certificate) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is not checked against a CA: the pin is the trust.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verifyPinned(pin),
	}
	if own != nil {
		cfg.Certificates = []tls.Certificate{*own}
	}
	return cfg
}

// ServerConfig serves id and asks clients for a certificate without
// requiring one: members present theirs (see PeerFingerprint), browsers and
// the CLI do not.
func ServerConfig(id Identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{id.Certificate},
		ClientAuth:   tls.RequestClientCert,
	}
}

// PeerFingerprint is the fingerprint of the certificate the peer of cs
// presented, or "" when it presented none (or cs is nil: not TLS).
func PeerFingerprint(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return Fingerprint(cs.PeerCertificates[0])
}
