package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server"
)

// TestLimitedJoinToken: `join-token --uses 2 --ttl 1h` with no server
// running records a token in config/join-tokens.json and prints a join
// token carrying it instead of the cluster token.
func TestLimitedJoinToken(t *testing.T) {
	cfg := config.Server{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", DB: "file", Auth: true,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	s, err := server.New(context.Background(), server.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())

	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--data-dir", cfg.DataDir, "--socket", "", "join-token", "--url", "https://127.0.0.1:3355", "--uses", "2", "--ttl", "1h"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	jt, err := cluster.ParseJoinToken(out.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Validate()
	a, err := cluster.OpenAdmissions(cfg.JoinTokensPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Credential(jt.ClusterToken); !ok {
		t.Fatalf("the printed token %q is not recorded", jt.ClusterToken)
	}
	if plain, _ := readTrim(cfg.ClusterTokenPath()); plain == jt.ClusterToken {
		t.Fatal("the limited join token carries the cluster token")
	}
}

func readTrim(path string) (string, error) {
	var b bytes.Buffer
	data, err := os.ReadFile(path)
	b.Write(data)
	return strings.TrimSpace(b.String()), err
}
