// Package testbedos is the Go SDK of the TestbedOS REST API: a typed client
// of testbedos-server for programs, notebooks' Go kernels and CI jobs that
// drive testbeds. It speaks HTTP over the server's unix socket (the trusted
// local door, no token) or over TCP (http:// with a bearer token, https://
// with the server's pinned certificate fingerprint).
//
// Every route of the server's OpenAPI document (GET /api/openapi.json) has
// a method here; a test of this package fails when one has not.
//
// A typical experiment:
//
//	c, err := testbedos.Connect(ctx)                  // the local socket, else localhost:3355
//	_, err = c.CreateDeployment(ctx, "lab", "/srv/labs/lab")
//	_, err = c.Run(ctx, "lab", testbedos.CmdGenerateArtefacts, nil)
//	_, err = c.Run(ctx, "lab", testbedos.CmdUp, nil) // streams the log to the callback
//	res, err := c.Exec(ctx, "lab", "web", testbedos.ExecRequest{Command: []string{"ping", "-c", "1", "10.0.0.20"}})
//	_, err = c.SetImpairment(ctx, "lab", "web", "eth0", testbedos.Impairment{Up: true, DelayMS: 50})
//	pcap, err := c.Capture(ctx, "lab", "web", "eth0", "icmp")
//	_, err = c.Run(ctx, "lab", testbedos.CmdDown, nil)
//
// Errors the server answers are *Error values with the HTTP status;
// StatusOf reads it (404 unknown, 409 conflict, 422 invalid topology…).
package testbedos
