package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"testing"
)

// A file larger than several writeback chunks, received in two parts (the
// second resuming in the middle of a chunk), is whole and intact in the
// cache.
func TestCachePutAcrossWritebackChunks(t *testing.T) {
	data := make([]byte, 3*writeBehindChunk+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	c := fileCache{dir: t.TempDir()}
	total := int64(len(data))

	cut := int64(writeBehindChunk + writeBehindChunk/3)
	if err := c.put(hash, bytes.NewReader(data[:cut]), 0, total); err == nil {
		t.Fatal("a part of the file was taken as the whole")
	}
	if got := c.received(hash); got != cut {
		t.Fatalf("received %d bytes, want %d kept to resume from", got, cut)
	}
	if err := c.put(hash, bytes.NewReader(data[cut:]), cut, total); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(c.path(hash))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("cached file differs from what was sent (%d of %d bytes)", len(got), len(data))
	}
	if _, err := os.Stat(c.partialPath(hash)); !os.IsNotExist(err) {
		t.Errorf("the partial file is still there: %v", err)
	}
}
