package testbedos

import "context"

// Power stops, starts or restarts one guest of an up deployment, as an
// action of its own: state is "stopped", "running" or "restarted". It
// returns the action's uuid (follow it with Follow or Wait); the
// deployment stays up.
func (c *Client) Power(ctx context.Context, name, guest, state string) (string, error) {
	return c.c.Power(ctx, name, guest, state)
}

// ExecAll runs one command in several guests of an up deployment at once
// (req.Guests, or every guest when empty) and returns one result per guest.
func (c *Client) ExecAll(ctx context.Context, name string, req FanoutExecRequest) (FanoutExecResult, error) {
	return c.c.ExecAll(ctx, name, req)
}
