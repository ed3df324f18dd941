// Command tb-guestimage builds the TestbedOS test guest image and prints
// kernel command lines for it.
//
//	tb-guestimage build -out DIR [-kernel VERSION]   # DIR/vmlinuz, DIR/initramfs.cpio.gz
//	tb-guestimage cached [-kernel VERSION]           # build into the cache, print its dir
//	tb-guestimage cmdline -ip 10.0.0.20/24 [-gw 10.0.0.1] [-hostname vm1] [-key FILE.pub]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"strings"

	"github.com/testbedos/testbedos/test/guestimage"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("tb-guestimage: ")
	if len(os.Args) < 2 {
		usage()
	}
	ctx := context.Background()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	switch os.Args[1] {
	case "build", "cached":
		out := fs.String("out", "", "output directory (build)")
		kver := fs.String("kernel", "", "kernel version (default: newest in /boot with virtio_net)")
		sshd := fs.String("sshd", "", "prebuilt static tb-sshd (default: build ./test/guestimage/sshd)")
		fs.Parse(os.Args[2:])
		opts := guestimage.Options{KernelVersion: *kver, SSHD: *sshd, Logf: log.Printf}
		var img *guestimage.Image
		var err error
		if os.Args[1] == "build" {
			if *out == "" {
				log.Fatal("build: -out DIR is required")
			}
			img, err = guestimage.Build(ctx, *out, opts)
		} else {
			img, err = guestimage.Cached(ctx, opts)
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("kernel=%s\ninitrd=%s\nkernel_version=%s\nhash=%s\ncached=%v\nbuild_time=%s\n",
			img.Kernel, img.Initrd, img.KernelVersion, img.Hash, img.Cached, img.BuildTime.Round(1e6))
	case "cmdline":
		var p guestimage.Params
		ip := fs.String("ip", "", "eth0 address, CIDR")
		gw := fs.String("gw", "", "default gateway")
		fs.StringVar(&p.Hostname, "hostname", "", "host name")
		var keys stringList
		fs.Var(&keys, "key", "authorized_keys file (repeatable)")
		fs.BoolVar(&p.Verbose, "verbose", false, "keep kernel boot messages")
		fs.Parse(os.Args[2:])
		var err error
		if *ip != "" {
			if p.IP, err = netip.ParsePrefix(*ip); err != nil {
				log.Fatal(err)
			}
		}
		if *gw != "" {
			if p.Gateway, err = netip.ParseAddr(*gw); err != nil {
				log.Fatal(err)
			}
		}
		for _, k := range keys {
			b, err := os.ReadFile(k)
			if err != nil {
				log.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					p.AuthorizedKeys = append(p.AuthorizedKeys, l)
				}
			}
		}
		s, err := p.Cmdline()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(s)
	default:
		usage()
	}
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tb-guestimage build -out DIR | cached | cmdline -ip CIDR [-gw IP] [-hostname NAME] [-key FILE]")
	os.Exit(2)
}
