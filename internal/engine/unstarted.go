package engine

// dropUnstarted forgets, after a failed up, the guests this run recorded
// as pending whose item never started (a failing stage stops starting
// items): nothing of them exists. Items that started leave no pending
// entry behind (they record the guest, or delete it when Create fails), and
// the stage has waited for all of them.
func (u *upRun) dropUnstarted() {
	u.led.edit(func(r *Record) {
		for i, pg := range u.guests {
			if i >= len(u.addedPending) || !u.addedPending[i] {
				continue
			}
			h := r.host(pg.host.Name())
			if gr, ok := h.Guests[pg.g.Name]; ok && gr.Pending {
				delete(h.Guests, pg.g.Name)
			}
		}
		for i, b := range u.bridges {
			if i < len(u.bridgeStarted) && !u.bridgeStarted[i] && !u.bridgeRecorded[i] {
				delete(r.host(b.host.Name()).Bridges, b.sw.Bridge)
			}
		}
		u.dropUnstartedTunnels(r)
		u.dropUnstartedRouters(r)
	})
}
