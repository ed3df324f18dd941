package server

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// Limits on guessing credentials, per remote address.
const (
	// freeGuesses wrong credentials pass without delay; each one after
	// locks the address out for twice as long as the one before, from
	// firstLockout up to maxLockout.
	freeGuesses  = 5
	firstLockout = time.Second
	maxLockout   = 60 * time.Second
	// forgetGuesses: an address that made no wrong guess for this long
	// starts again from zero.
	forgetGuesses = 10 * time.Minute
	// maxGuessers bounds the addresses remembered.
	maxGuessers = 10_000
)

// guesses counts wrong credentials (API token, login form, cluster token,
// member secret) per remote IP address and locks an address out, with an
// exponential backoff, once it made freeGuesses of them. A right
// credential clears the count; while locked out an address gets 429 with
// Retry-After even for a right one, so guessing gains nothing from it.
type guesses struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*strikes
}

type strikes struct {
	n     int
	last  time.Time
	until time.Time
}

func newGuesses() *guesses {
	return &guesses{now: time.Now, m: map[string]*strikes{}}
}

// ipOf is the request's remote IP address ("" over the unix socket).
func ipOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// lockedOut reports how long the request's address must still wait.
func (g *guesses) lockedOut(r *http.Request) (time.Duration, bool) {
	ip := ipOf(r)
	if ip == "" {
		return 0, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.m[ip]
	if !ok {
		return 0, false
	}
	left := st.until.Sub(g.now())
	return left, left > 0
}

// failed counts a wrong credential of the request's address.
func (g *guesses) failed(r *http.Request) {
	ip := ipOf(r)
	if ip == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	st, ok := g.m[ip]
	if ok && now.Sub(st.last) > forgetGuesses {
		st.n = 0
	}
	if !ok {
		if len(g.m) >= maxGuessers {
			g.forget(now)
		}
		st = &strikes{}
		g.m[ip] = st
	}
	st.n++
	st.last = now
	if st.n > freeGuesses {
		lock := firstLockout << min(st.n-freeGuesses-1, 30)
		st.until = now.Add(min(lock, maxLockout))
	}
}

// succeeded clears the count of the request's address.
func (g *guesses) succeeded(r *http.Request) {
	ip := ipOf(r)
	if ip == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, ip)
}

// forget drops the addresses that guessed nothing lately; when every one
// did, the oldest half goes (a flood of addresses must not grow memory).
func (g *guesses) forget(now time.Time) {
	for ip, st := range g.m {
		if now.Sub(st.last) > forgetGuesses && !now.Before(st.until) {
			delete(g.m, ip)
		}
	}
	if len(g.m) < maxGuessers {
		return
	}
	n := 0
	for ip := range g.m {
		if n >= maxGuessers/2 {
			break
		}
		delete(g.m, ip)
		n++
	}
}

// refuseLockedOut answers 429 to a request whose address is locked out,
// and reports whether it did.
func (g *guesses) refuseLockedOut(w http.ResponseWriter, r *http.Request) bool {
	left, locked := g.lockedOut(r)
	if !locked {
		return false
	}
	countAs(r, routeUnauthenticated)
	dropBody(w, r)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds()))))
	httpapi.WriteErrorBody(w, http.StatusTooManyRequests,
		"too many wrong credentials from this address: wait "+strconv.Itoa(int(math.Ceil(left.Seconds())))+" s (Retry-After) before trying again")
	return true
}
