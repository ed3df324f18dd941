package links

import (
	"fmt"
	"runtime"

	"github.com/safchain/ethtool"
	"golang.org/x/sys/unix"
)

// TxChecksumOff turns tx checksum offload off on the link name inside the
// network namespace nsfd (ethtool -K NAME tx off): the ethtool socket is
// made inside the namespace, on a thread that then goes back to its own.
func TxChecksumOff(nsfd int, name string) error {
	var e *ethtool.Ethtool
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(self)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		e, err = ethtool.NewEthtool()
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			// Back in its namespace: the thread may serve others again.
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("ethtool in the guest's namespace: %w", err)
	}
	defer e.Close()
	return TxChecksumOffIn(e, name)
}

// TxChecksumOffIn turns tx checksum offload off on name through e.
func TxChecksumOffIn(e *ethtool.Ethtool, name string) error {
	if err := e.Change(name, map[string]bool{"tx-checksum-ip-generic": false}); err != nil {
		return fmt.Errorf("tx checksum offload off on %s: %w", name, err)
	}
	return nil
}
