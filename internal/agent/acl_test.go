package agent_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/net/aclnft"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// The main writes a client's ACL table through the agent, and deletes it.
func TestACLTableThroughTheAgent(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	const secret = "s"
	srv := httptest.NewServer(agent.RequireSecret(secret)(agent.Handler(agent.Options{
		Name: "host2", DataDir: t.TempDir(), Network: hostnet.NewHost(nil),
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "host2", BaseURL: srv.URL, Secret: secret, Client: srv.Client(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acls, err := engine.ACLsOf(remote)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := prefix + "-acl"
	t.Cleanup(func() { _ = aclnft.DeleteTable(context.Background(), name) })
	spec := engine.ACLTableSpec{Name: name, Switches: []aclnft.SwitchSpec{{
		Switch: "sw0", Ports: []string{prefix + "v1"}, DenyAll: true,
		Rules: []aclnft.RuleSpec{{Direction: "to-lport", Priority: 1, Match: "icmp4", Action: "allow"}},
	}}}
	if created, err := acls.EnsureACLTable(ctx, spec); err != nil || !created {
		t.Fatalf("EnsureACLTable = %v, %v", created, err)
	}
	if ok, err := aclnft.HasTable(ctx, name); err != nil || !ok {
		t.Fatalf("table %s on the client: %v, %v", name, ok, err)
	}
	if again, err := acls.EnsureACLTable(ctx, spec); err != nil || again {
		t.Fatalf("second EnsureACLTable = %v, %v; want rewritten", again, err)
	}
	spec.Switches[0].Rules[0].Match = "ip4.sorc == 1.2.3.4"
	if _, err := acls.EnsureACLTable(ctx, spec); err == nil {
		t.Fatal("a bad match was accepted")
	}
	if err := acls.DeleteACLTable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := aclnft.HasTable(ctx, name); ok {
		t.Fatal("table still there after DeleteACLTable")
	}
	if err := acls.DeleteACLTable(ctx, name); err != nil {
		t.Fatalf("DeleteACLTable of a missing table: %v", err)
	}
}
