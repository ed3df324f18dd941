package docker

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/moby/moby/client"
)

// IdleTimeout is how long a connection to dockerd stays open unused. The
// calls of one action come close together; between actions the server
// keeps no connection (and no goroutine reading it) open for long.
const IdleTimeout = time.Second

// newClient is the Docker Engine API client of dockerd at host ("": the
// DOCKER_HOST of the environment, else the default socket), whose idle
// connections close after IdleTimeout instead of the library's 30 s.
func newClient(host string) (*client.Client, error) {
	tr := &http.Transport{MaxIdleConns: 6, IdleConnTimeout: IdleTimeout,
		// No HTTP/2, as the library's own transport: setting it up would
		// give the transport a TLS configuration, and the client would
		// then speak https to a plain socket.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	o := []client.Opt{
		client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect}),
		// The transport dials the default socket unless an option below
		// names another.
		client.WithHost(client.DefaultDockerHost),
		client.FromEnv,
	}
	if host != "" {
		o = append(o, client.WithHost(host))
	}
	return client.New(o...)
}
