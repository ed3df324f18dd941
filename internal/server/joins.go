package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// New hosts may join at most joinBurst at once, then one every joinEvery.
const (
	joinBurst = 20
	joinEvery = 3 * time.Second
)

// joinCredentialKey holds, in a join's context, the credential the door
// let it in with.
type joinCredentialKey struct{}

// joinCredential is the credential that let a join in: the cluster token
// (made when its file was written) or a limited join token.
func joinCredential(ctx context.Context) cluster.JoinCredential {
	c, _ := ctx.Value(joinCredentialKey{}).(cluster.JoinCredential)
	return c
}

// joinBucket is a token bucket for joins of new hosts.
type joinBucket struct {
	mu     sync.Mutex
	now    func() time.Time
	tokens float64
	last   time.Time
}

func newJoinBucket() *joinBucket {
	return &joinBucket{now: time.Now, tokens: joinBurst, last: time.Now()}
}

// take takes a join, or says how long until one is free.
func (b *joinBucket) take() (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(joinBurst, b.tokens+now.Sub(b.last).Seconds()/joinEvery.Seconds())
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(joinEvery)), false
}

func (b *joinBucket) giveBack() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(joinBurst, b.tokens+1)
}

// Join admits a host: a live member joining again with its certificate
// always; a new host (or one lost to missed heartbeats) only within the
// rate of new joins and the cap on members, when it was not removed for
// good, and when the limited join token it came with still has a use for
// it.
func (c *clusterAPI) Join(ctx context.Context, req api.JoinRequest, peer string) (api.JoinAnswer, error) {
	ans, err := c.join(ctx, req, peer)
	if err != nil {
		return ans, err
	}
	// An ovn main tells the member where its ovn-controller joins.
	ans.OVN, err = c.s.ovnJoin(req)
	return ans, err
}

func (c *clusterAPI) join(ctx context.Context, req api.JoinRequest, peer string) (api.JoinAnswer, error) {
	fp, err := tlsid.ParseFingerprint(req.Fingerprint)
	if err != nil || req.Validate() != nil {
		return c.s.members.Join(req, peer) // its own answer to a bad request
	}
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	if c.s.members.Knows(req.Name, fp) {
		return c.s.members.Join(req, peer)
	}
	if n, max := c.s.members.Count(), c.maxMembers(); n >= max {
		return api.JoinAnswer{}, &httpapi.Error{Code: http.StatusForbidden, Err: api.ErrConflict,
			Message: fmt.Sprintf("the cluster is full: %d members, the cap is %d (TESTBEDOS_MAX_MEMBERS); remove one (DELETE /api/cluster/{name}) or raise the cap", n, max)}
	}
	undo, err := c.s.admissions.Admit(joinCredential(ctx), req.Name, fp)
	switch {
	case errors.Is(err, cluster.ErrForgotten), errors.Is(err, cluster.ErrTokenSpent):
		return api.JoinAnswer{}, &httpapi.Error{Code: http.StatusForbidden, Err: err, Message: err.Error()}
	case err != nil:
		return api.JoinAnswer{}, err
	}
	if wait, ok := c.s.joins.take(); !ok {
		undo()
		return api.JoinAnswer{}, &httpapi.Error{Code: http.StatusTooManyRequests, Err: api.ErrUnavailable,
			Message: fmt.Sprintf("too many hosts joining: at most %d at once, then one every %v; try again in %v", joinBurst, joinEvery, wait.Round(time.Second))}
	}
	ans, err := c.s.members.Join(req, peer)
	if err != nil {
		undo()
		c.s.joins.giveBack()
	}
	return ans, err
}

func (c *clusterAPI) maxMembers() int {
	if c.s.cfg.MaxMembers > 0 {
		return c.s.cfg.MaxMembers
	}
	return config.DefaultMaxMembers
}

// Remove drops a member; with forget its name and certificate are refused
// with every credential made before now.
func (c *clusterAPI) Remove(name string, forget bool) error {
	m, err := c.s.members.Member(name)
	if err != nil {
		return err
	}
	if forget {
		if err := c.s.admissions.Forget(name, m.Fingerprint); err != nil {
			return err
		}
	}
	if err := c.s.members.Remove(name); err != nil {
		return err
	}
	return c.s.ovnForget(name)
}

// IssueJoinToken makes a limited join token.
func (c *clusterAPI) IssueJoinToken(ctx context.Context, req httpapi.JoinTokenRequest) (httpapi.JoinTokenAnswer, error) {
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil {
		return httpapi.JoinTokenAnswer{}, fmt.Errorf("%w: ttl %q: want a duration such as 1h", api.ErrBadRequest, req.TTL)
	}
	t, err := c.s.admissions.Issue(req.Uses, ttl)
	if err != nil {
		return httpapi.JoinTokenAnswer{}, err
	}
	return httpapi.JoinTokenAnswer{ID: t.ID, Secret: t.Secret, Uses: t.Uses, ExpiresAt: t.Expires}, nil
}

// clusterTokenMade is when the cluster token's file was written: a host
// removed for good after it is refused with it.
func clusterTokenMade(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}
