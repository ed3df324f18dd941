package deps
import (
 _ "github.com/vishvananda/netlink"
 _ "github.com/vishvananda/netns"
 _ "github.com/google/nftables"
 _ "github.com/coder/websocket"
 _ "github.com/spf13/cobra"
 _ "go.yaml.in/yaml/v3"
 _ "github.com/google/uuid"
 _ "gopkg.in/natefinch/lumberjack.v2"
 _ "modernc.org/sqlite"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/digitalocean/go-libvirt"
 _ "libvirt.org/go/libvirtxml"
 _ "golang.org/x/crypto/ssh"
 _ "golang.org/x/sys/unix"
)
