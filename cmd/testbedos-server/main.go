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
			return fmt.Errorf("client mode is not available yet")
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
	return root
}

func run(ctx context.Context, cfg config.Server, mode string) error {
	cfg.Mode = mode
	if err := cfg.MakeDirs(); err != nil {
		return err
	}
	log, closer, err := server.NewLogger(cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := cfg.SaveMode(config.SavedMode{Mode: mode, MainURL: cfg.MainURL}); err != nil {
		return err
	}
	log.Info("starting testbedos-server", "mode", mode, "version", server.Version, "data_dir", cfg.DataDir, "store", cfg.DB)
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log})
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
