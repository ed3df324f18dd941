package deps

import (
	_ "github.com/coder/websocket"
	_ "github.com/digitalocean/go-libvirt"
	_ "github.com/google/nftables"
	_ "github.com/google/uuid"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/natefinch/lumberjack.v2"
	_ "libvirt.org/go/libvirtxml"
	_ "modernc.org/sqlite"
)
