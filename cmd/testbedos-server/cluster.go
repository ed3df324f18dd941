package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
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
// token and its certificate's fingerprint. It reads what the main made at
// its first start; it needs no running server.
func joinTokenCommand(finish func() (config.Server, error)) *cobra.Command {
	var mainURL string
	cmd := &cobra.Command{
		Use:   "join-token [--url URL]",
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
			jt := cluster.JoinToken{MainURL: mainURL, ClusterToken: strings.TrimSpace(string(token)), Fingerprint: tlsid.Fingerprint(cert)}
			fmt.Fprintln(cmd.OutOrStdout(), jt.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&mainURL, "url", "", "the main's URL as clients reach it (default: https://<host.json ip>:<listen port>)")
	return cmd
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
