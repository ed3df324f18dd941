package e2e

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// checkSerialConsole opens a libvirt guest's console websocket (the
// domain's serial console, streamed by libvirtd), types a command into the
// test image's shell on ttyS0 and reads its output; a second console takes
// it over and the first websocket closes with 1000.
func checkSerialConsole(t *testing.T, s *server, name, guestName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	con, err := s.c.OpenConsole(ctx, name, guestName)
	if err != nil {
		t.Fatalf("console of %s: %v", guestName, err)
	}
	defer con.Close()
	if err := con.Resize(100, 30); err != nil { // accepted, does nothing
		t.Fatal(err)
	}
	if _, err := con.Write([]byte("\necho serial-$((6*7))\n")); err != nil {
		t.Fatal(err)
	}
	if screen := readUntil(t, con, "serial-42"); t.Failed() {
		t.Fatalf("serial console of %s: %q", guestName, screen)
	}

	con2, err := s.c.OpenConsole(ctx, name, guestName)
	if err != nil {
		t.Fatalf("second console of %s: %v", guestName, err)
	}
	defer con2.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, con)
		ended <- err
	}()
	select {
	case err := <-ended:
		if err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("the first console ended with %v, want a normal closure", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the first console goes on after a second one took it over")
	}
	if _, err := con2.Write([]byte("echo again-$((6*7))\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, con2, "again-42")
}
