package monitor

// ring keeps the last cap values pushed, oldest first; it never grows past
// its capacity.
type ring[T any] struct {
	buf   []T
	start int // index of the oldest value once full
	full  bool
}

func newRing[T any](capacity int) *ring[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &ring[T]{buf: make([]T, 0, capacity)}
}

// push adds v, dropping the oldest value when full.
func (r *ring[T]) push(v T) {
	if !r.full {
		r.buf = append(r.buf, v)
		r.full = len(r.buf) == cap(r.buf)
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}

// values copies the values out, oldest first.
func (r *ring[T]) values() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

// last is the newest value.
func (r *ring[T]) last() (T, bool) {
	var zero T
	if len(r.buf) == 0 {
		return zero, false
	}
	i := len(r.buf) - 1
	if r.full {
		i = (r.start + len(r.buf) - 1) % len(r.buf)
	}
	return r.buf[i], true
}

func (r *ring[T]) len() int { return len(r.buf) }
