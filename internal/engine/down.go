package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
)

// Down removes every object the record of the deployment holds, kind by
// kind in the reverse of up's order (guests first, bridges last), carrying
// on past errors so one stuck guest does not keep the others alive. It
// works from the record alone: the project folder may have changed or
// gone. What it could not remove stays recorded, so running down again
// finishes the job.
func (e *Engine) Down(ctx context.Context, d api.Deployment, log actlog.Log) error {
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return err
	}
	var empty bool
	led.view(func(r *Record) { empty = r.empty() })
	if empty {
		log.Printf("deployment %s has nothing deployed: nothing to do", d.Name)
		return led.save(ctx)
	}
	dr := &downRun{e: e, d: d, led: led, log: log}
	stages := dr.stages("")
	p := newProgress(log, "down", len(stages)+1)
	if err := e.runStages(ctx, p, stages); err != nil {
		return err
	}
	if len(dr.offlineHosts) > 0 {
		p.stage("end", "deployment %s is down; offline hosts are cleaned when they come back", d.Name)
		return nil
	}
	p.stage("end", "deployment %s is down", d.Name)
	return nil
}

// CleanHost removes what deployment d's record holds on host, and only
// there: the clean-up of a host that was offline during down, once it is
// back. A record with nothing on host is left alone.
func (e *Engine) CleanHost(ctx context.Context, d api.Deployment, host string, log actlog.Log) (cleaned bool, err error) {
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return false, err
	}
	var has bool
	led.view(func(r *Record) { has = r.Hosts[host] != nil && !r.Hosts[host].empty() })
	if !has {
		return false, nil
	}
	dr := &downRun{e: e, d: d, led: led, log: log, only: host}
	stages := dr.stages("")
	if err := e.runStages(ctx, newProgress(log, "clean "+host, len(stages)), stages); err != nil {
		return false, err
	}
	return len(dr.offlineHosts) == 0, nil
}

// downRun is one down (or the removals of an apply) in progress.
type downRun struct {
	e   *Engine
	d   api.Deployment
	led *ledger
	log actlog.Log

	// only, when set, limits the run to one host (CleanHost).
	only string
	// pick, when set, limits the run to the plan's removals (Apply).
	pick *planned
	// offlineHosts could not be reached: what the record holds there stays
	// recorded, for CleanHost when the host comes back.
	mu           sync.Mutex
	offlineHosts map[string]bool
}

// stages are down's stages: one per kind the record holds objects of, in
// the reverse of up's order. prefix, when set, goes before each stage's
// name ("remove " in apply).
func (dr *downRun) stages(prefix string) []stage {
	ks := dr.e.kinds()
	var out []stage
	for i := len(ks) - 1; i >= 0; i-- {
		if st, ok := dr.kindStage(ks[i]); ok {
			st.name = prefix + st.name
			out = append(out, st)
		}
	}
	return out
}

// recordedObject is an object of the record that this run removes.
type recordedObject struct {
	host, key string
	rm        removal
}

// kindStage is the stage that removes the objects of kind k the run
// takes; false when there are none.
func (dr *downRun) kindStage(k kind) (stage, bool) {
	var objs []recordedObject
	var hosts int
	env := removeEnv{dep: dr.d.Name, project: projectOf(dr.led, dr.d), log: dr.log,
		otherHolder: func(ctx context.Context, host string, holds func(*HostRecord) bool) (string, error) {
			return dr.e.sharedHolder(ctx, dr.d.Name, host, holds)
		}}
	dr.led.view(func(r *Record) {
		hosts = len(r.Hosts)
		for _, h := range dr.hostsOf(r) {
			hr := r.Hosts[h]
			for _, key := range k.held(hr) {
				if dr.pick != nil && !dr.pick.removes(k, h, key) {
					continue
				}
				objs = append(objs, recordedObject{host: h, key: key, rm: k.removal(env, hr, key)})
			}
		}
	})
	if len(objs) == 0 {
		return stage{}, false
	}
	nouns := make([]string, len(objs))
	for i, o := range objs {
		nouns[i] = o.rm.noun
	}
	items := func() []item {
		out := make([]item, len(objs))
		for i, o := range objs {
			out[i] = func(ctx context.Context) error {
				host, err := dr.e.opts.Hosts.Host(o.host)
				if err != nil {
					return dr.offline(o.host, objectError(o.rm.what, err))
				}
				how, err := o.rm.run(ctx, host)
				if err != nil {
					return dr.offline(o.host, objectError(o.rm.what, err))
				}
				dr.led.edit(func(r *Record) { k.forget(r.host(o.host), o.key) })
				dr.log.Printf("    %s: %s%s", o.rm.what, how, onHostName(hosts, o.host))
				return nil
			}
		}
		return out
	}
	return stage{
		name:    k.stage(),
		detail:  func() string { return countNouns(nouns) },
		items:   items,
		collect: true,
		limit:   k.removeLimit(&dr.e.opts),
		done:    dr.led.save,
	}, true
}

// hostsOf lists the hosts of the record this run works on.
func (dr *downRun) hostsOf(r *Record) []string {
	if dr.only != "" {
		if _, ok := r.Hosts[dr.only]; ok {
			return []string{dr.only}
		}
		return nil
	}
	return r.hostNames()
}

// offline turns the failure of an unreachable host into a note: its part
// of the record stays, and CleanHost removes it when the host is back. Any
// other error is returned as it is.
func (dr *downRun) offline(host string, err error) error {
	if !errors.Is(err, ErrHostUnreachable) {
		return err
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if dr.offlineHosts == nil {
		dr.offlineHosts = map[string]bool{}
	}
	if !dr.offlineHosts[host] {
		dr.offlineHosts[host] = true
		dr.log.Printf("    host %s is offline: what deployment %s has there is removed when it comes back (%v)", host, dr.d.Name, err)
	}
	return nil
}

// projectOf is the project folder a record was made from: the files of
// its guests are there, whatever the deployment says now.
func projectOf(led *ledger, d api.Deployment) string {
	var p string
	led.view(func(r *Record) { p = r.Project })
	if p == "" {
		return d.ProjectLocation
	}
	return p
}

// count writes "1 switch", "3 switches".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if len(noun) > 1 && (noun[len(noun)-2:] == "ch" || noun[len(noun)-1] == 's') {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func ifThen(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
