// Command testbedos-server is the TestbedOS daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server"
	"github.com/testbedos/testbedos/internal/store/migrate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "testbedos-server:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:          "testbedos-server [main|client]",
		Short:        "The TestbedOS daemon; without a mode it starts in the mode saved in config/mode.json",
		Args:         cobra.NoArgs,
		Version:      server.Version,
		SilenceUsage: true, SilenceErrors: true,
	}
	finish := config.Bind(root.PersistentFlags(), os.LookupEnv)
	root.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := finish()
		if err != nil {
			return err
		}
		saved, err := cfg.LoadMode()
		if err != nil {
			return err
		}
		if saved.Mode == config.ModeClient {
			// The member file holds the secret and the cluster token.
			cfg.MainURL, cfg.MainFingerprint = saved.MainURL, saved.Fingerprint
			return run(cmd.Context(), cfg, config.ModeClient)
		}
		return run(cmd.Context(), cfg, config.ModeMain)
	}
	root.AddCommand(&cobra.Command{
		Use:   "main",
		Short: "Run as the main host: API, GUI, orchestration, cluster leader",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := finish()
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg, config.ModeMain)
		},
	})
	root.AddCommand(clientCommand(finish), joinTokenCommand(finish))
	root.AddCommand(migrateCommand(finish))
	return root
}

// migrateCommand copies every record of one store provider into the other,
// in the configured data folder, while no server uses it.
func migrateCommand(finish func() (config.Server, error)) *cobra.Command {
	var from, to string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "migrate --from file|sqlite --to file|sqlite",
		Short: "Copy every deployment and log entry from one store provider to the other; the server must be stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			cfg, err := finish()
			if err != nil {
				return err
			}
			if from == to {
				return fmt.Errorf("migrate: --from and --to are both %q", from)
			}
			lock, err := cfg.LockDataDir()
			if err != nil {
				return fmt.Errorf("migrate: %w: stop the server first", err)
			}
			defer lock.Release()
			loc := migrate.Locations{FileDir: cfg.DeploymentsDir(), DeployedDir: cfg.DeployedDir(), SQLitePath: cfg.SQLitePath()}
			src, err := migrate.Open(from, loc, true)
			if err != nil {
				return fmt.Errorf("migrate: source: %w", err)
			}
			defer src.Close()
			dst, err := migrate.Open(to, loc, false)
			if err != nil {
				return fmt.Errorf("migrate: destination: %w", err)
			}
			defer func() {
				if cerr := dst.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("migrate: destination: %w", cerr)
				}
			}()
			report, err := migrate.Options{Overwrite: overwrite}.Copy(cmd.Context(), src, dst)
			if err != nil {
				if report != (migrate.Report{}) {
					fmt.Fprintf(cmd.OutOrStdout(), "stopped half way: %s from %s to %s\n", report, from, to)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s from %s to %s\n", report, from, to)
			fmt.Fprintf(cmd.OutOrStdout(), "start the server with --db %s (TESTBEDOS_DB=%s) to use them\n", to, to)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "store provider to read: file or sqlite")
	cmd.Flags().StringVar(&to, "to", "", "store provider to write: file or sqlite")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace deployments the destination already has")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

func run(ctx context.Context, cfg config.Server, mode string) error {
	cfg.Mode = mode
	// The data folder is ours before anything is written there (the log,
	// config/mode.json), and stays ours until the last log line.
	lock, err := cfg.LockDataDir()
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := cfg.MakeDirs(); err != nil {
		return err
	}
	log, closer, err := server.NewLogger(cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	log.Info("starting testbedos-server", "mode", mode, "version", server.Version, "data_dir", cfg.DataDir, "store", cfg.DB)
	if cfg.Auth && cfg.Listen != "" {
		log.Info("TCP clients need the token in the token file: kvm-compose reads it with TESTBEDOS_DATA_DIR set to the data dir, or takes TESTBEDOS_TOKEN",
			"token_file", cfg.TokenPath(), "hint", "export TESTBEDOS_DATA_DIR="+cfg.DataDir)
	}
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log, Lock: lock})
	if err != nil {
		log.Error("cannot start", "err", err)
		return err
	}
	listeners, err := srv.Listeners()
	if err != nil {
		srv.Close(context.Background())
		log.Error("cannot listen", "err", err)
		return err
	}
	err = srv.Serve(ctx, listeners...)
	if err != nil {
		log.Error("stopped with error", "err", err)
	} else {
		log.Info("stopped")
	}
	return err
}
