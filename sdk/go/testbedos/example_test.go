package testbedos_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/testbedos/testbedos/sdk/go/testbedos"
)

// New makes a client of a named server without connecting: the unix
// socket needs no token, TCP does.
func ExampleNew() {
	local, err := testbedos.New("unix:///run/testbedos/testbedos.sock")
	if err != nil {
		log.Fatal(err)
	}
	remote, err := testbedos.New("http://127.0.0.1:3355", testbedos.WithToken("TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(local.Server())
	fmt.Println(remote.Server())
	// Output:
	// unix:///run/testbedos/testbedos.sock
	// http://127.0.0.1:3355
}

// A whole experiment: bring a lab up, measure, impair a link, measure
// again, bring it down.
func Example() {
	ctx := context.Background()
	c, err := testbedos.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	const lab = "lab"
	if _, err := c.CreateDeployment(ctx, lab, "/srv/labs/lab"); err != nil && testbedos.StatusOf(err) != 409 {
		log.Fatal(err)
	}
	for _, cmd := range []testbedos.CommandName{testbedos.CmdGenerateArtefacts, testbedos.CmdUp} {
		o, err := c.Run(ctx, lab, cmd, func(line string) { fmt.Println(line) })
		if err != nil || o.ErrorCode != 0 {
			log.Fatalf("%s: %v (code %d)", cmd, err, o.ErrorCode)
		}
	}
	ping := testbedos.ExecRequest{Command: []string{"ping", "-c", "3", "10.0.0.20"}}
	before, _ := c.Exec(ctx, lab, "web", ping)
	c.SetImpairment(ctx, lab, "web", "eth0", testbedos.Impairment{Up: true, DelayMS: 100, LossPct: 1})
	after, _ := c.Exec(ctx, lab, "web", ping)
	fmt.Println(before.Stdout, after.Stdout)
	c.Run(ctx, lab, testbedos.CmdDown, nil)
}

// Capture writes a few seconds of a guest interface's packets to a pcap
// file that Wireshark opens.
func ExampleClient_Capture() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := testbedos.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	stream, err := c.Capture(ctx, "lab", "web", "eth0", "icmp")
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	f, _ := os.Create("web.pcap")
	defer f.Close()
	io.Copy(f, stream) // until the timeout ends the capture
}

// Export saves a deployment as a bundle; Import makes a copy of it under
// another name, here on the same server.
func ExampleClient_Export() {
	ctx := context.Background()
	c, err := testbedos.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	bundle, err := c.Export(ctx, "lab")
	if err != nil {
		log.Fatal(err)
	}
	defer bundle.Close()
	res, err := c.Import(ctx, bundle, "lab-copy")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("imported into", res.Deployment.ProjectLocation, "missing images:", res.Missing)
}

// Inventory writes an Ansible inventory of the lab's guests.
func ExampleClient_Inventory() {
	ctx := context.Background()
	c, err := testbedos.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	inv, err := c.Inventory(ctx, "lab", "ansible")
	if err != nil {
		log.Fatal(err)
	}
	os.WriteFile("inventory.yaml", inv, 0o644)
}
