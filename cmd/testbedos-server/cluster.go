package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// clientCommand runs this host as a client of a main: with a join token,
// or with the main's URL, a file holding the cluster token and the main's
// fingerprint one by one.
func clientCommand(finish func() (config.Server, error)) *cobra.Command {
	var join string
	cmd := &cobra.Command{
		Use:   "client (--join TOKEN | --main URL --token-file F [--main-fingerprint FP])",
		Short: "Run as a client host: join the main, serve the agent API it drives, heart-beat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := finish()
			if err != nil {
				return err
			}
			switch {
			case join != "":
				jt, err := cluster.ParseJoinToken(join)
				if err != nil {
					return err
				}
				cfg.MainURL, cfg.ClusterToken, cfg.MainFingerprint = jt.MainURL, jt.ClusterToken, jt.Fingerprint
			case cfg.MainURL != "":
				if cfg.TokenFile != "" {
					data, err := os.ReadFile(cfg.TokenFile)
					if err != nil {
						return fmt.Errorf("cluster token: %w", err)
					}
					cfg.ClusterToken = strings.TrimSpace(string(data))
				}
				if cfg.MainFingerprint == "" {
					return fmt.Errorf("--main-fingerprint is needed with --main: the main's GET /api/config/status shows it, and `testbedos-server join-token` carries it")
				}
			default:
				return fmt.Errorf("give --join TOKEN (from `testbedos-server join-token` on the main), or --main URL --token-file F --main-fingerprint FP")
			}
			return run(cmd.Context(), cfg, config.ModeClient)
		},
	}
	cmd.Flags().StringVar(&join, "join", "", "join token printed by `testbedos-server join-token` on the main")
	return cmd
}

// joinTokenCommand prints a join token on the main: its URL, the cluster
// token (or, with --uses or --ttl, a limited token the main records) and
// its certificate's fingerprint. It reads what the main made at its first
// start; a limited token is made by the running server over its unix
// socket, or in the data folder when no server runs.
func joinTokenCommand(finish func() (config.Server, error)) *cobra.Command {
	var mainURL string
	var uses int
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "join-token [--url URL] [--uses N] [--ttl D]",
		Short: "Print a join token for new client hosts (run on the main)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := finish()
			if err != nil {
				return err
			}
			token, err := os.ReadFile(cfg.ClusterTokenPath())
			if err != nil {
				return fmt.Errorf("cluster token: %w: start the main once (testbedos-server main) to make it", err)
			}
			cert, err := tlsid.LoadCertificate(filepath.Join(cfg.TLSDir(), tlsid.CertFile))
			if err != nil {
				return fmt.Errorf("certificate: %w: start the main once (testbedos-server main) to make it", err)
			}
			if mainURL == "" {
				if mainURL, err = defaultMainURL(cfg); err != nil {
					return err
				}
			}
			if !strings.HasPrefix(mainURL, "https://") {
				return fmt.Errorf("--url %q: clients join over TLS: want https://host:port", mainURL)
			}
			secret := strings.TrimSpace(string(token))
			if uses != 0 || ttl != 0 {
				if uses == 0 {
					uses = 1
				}
				if ttl == 0 {
					ttl = defaultJoinTTL
				}
				if secret, err = issueJoinToken(cmd.Context(), cfg, uses, ttl); err != nil {
					return err
				}
			}
			jt := cluster.JoinToken{MainURL: mainURL, ClusterToken: secret, Fingerprint: tlsid.Fingerprint(cert)}
			fmt.Fprintln(cmd.OutOrStdout(), jt.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&mainURL, "url", "", "the main's URL as clients reach it (default: https://<host.json ip>:<listen port>)")
	cmd.Flags().IntVar(&uses, "uses", 0, "make a limited token that admits at most N hosts (default 1 with --ttl)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "make a limited token that admits new hosts for this long (default 24h with --uses)")
	return cmd
}

// defaultJoinTTL is a limited join token's lifetime when --ttl is not given.
const defaultJoinTTL = 24 * time.Hour

// issueJoinToken makes a limited join token: through the running server's
// unix socket, or, when no server runs, in the data folder under its lock.
func issueJoinToken(ctx context.Context, cfg config.Server, uses int, ttl time.Duration) (string, error) {
	if cfg.Socket != "" {
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", cfg.Socket)
		}}}
		body, _ := json.Marshal(httpapi.JoinTokenRequest{Uses: uses, TTL: ttl.String()})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://testbedos/api/cluster/join-tokens", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err == nil {
			defer resp.Body.Close()
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusCreated {
				return "", fmt.Errorf("join token: the server answered %s: %s", resp.Status, bytes.TrimSpace(data))
			}
			var ans httpapi.JoinTokenAnswer
			if err := json.Unmarshal(data, &ans); err != nil {
				return "", fmt.Errorf("join token: %w", err)
			}
			return ans.Secret, nil
		}
	}
	lock, err := cfg.LockDataDir()
	if err != nil {
		return "", fmt.Errorf("join token: the server's socket %s does not answer and the data folder is in use: %w", cfg.Socket, err)
	}
	defer lock.Release()
	a, err := cluster.OpenAdmissions(cfg.JoinTokensPath())
	if err != nil {
		return "", err
	}
	t, err := a.Issue(uses, ttl)
	if err != nil {
		return "", err
	}
	return t.Secret, nil
}

// defaultMainURL is https://<host.json ip>:<port of --listen>.
func defaultMainURL(cfg config.Server) (string, error) {
	host, err := cluster.LoadHost(cfg.HostPath())
	if err != nil {
		return "", fmt.Errorf("host.json: %w: start the main once, or give --url", err)
	}
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "0" {
		return "", fmt.Errorf("listen address %q has no fixed port: give --url", cfg.Listen)
	}
	if !cfg.UseTLS() {
		return "", fmt.Errorf("the main listens on %s without TLS: clients cannot join it; listen on the testbed address (TESTBEDOS_TLS=auto) or give --url", cfg.Listen)
	}
	return "https://" + net.JoinHostPort(host.IP, port), nil
}
