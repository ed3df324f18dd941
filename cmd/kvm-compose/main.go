// Command kvm-compose is the TestbedOS command line.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/testbedos/testbedos/internal/cli"
)

func main() {
	interrupts := make(chan os.Signal, 2)
	signal.Notify(interrupts, os.Interrupt)
	os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr, interrupts))
}
