package gui

import (
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

type stateCount struct {
	State string
	Count int
}

type dashboardData struct {
	Deployments []deploymentRow
	ByState     []stateCount
}

// deploymentRow is a deployment with its state as the pages show it.
type deploymentRow struct {
	api.Deployment
	StateText string
}

func (g *GUI) dashboard(w http.ResponseWriter, r *http.Request) {
	list, err := g.list(r)
	if err != nil {
		g.failed(w, err)
		return
	}
	counts := map[string]int{}
	for _, d := range list {
		counts[string(stateKind(d.State))]++
	}
	var by []stateCount
	for _, k := range []api.StateKind{api.StateUp, api.StateRunning, api.StateFailed, api.StateDown} {
		by = append(by, stateCount{State: string(k), Count: counts[string(k)]})
	}
	g.render(w, http.StatusOK, "dashboard", g.page("Dashboard", "dashboard", dashboardData{Deployments: list, ByState: by}))
}

func stateKind(s api.DeploymentState) api.StateKind {
	if s.Kind == "" {
		return api.StateDown
	}
	return s.Kind
}

func (g *GUI) list(r *http.Request) ([]deploymentRow, error) {
	list, err := g.opts.Records.Deployments(r.Context())
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	rows := make([]deploymentRow, len(list))
	for i, d := range list {
		rows[i] = deploymentRow{Deployment: d, StateText: d.State.String()}
		if lastEnded(d) {
			idx, err := g.opts.Records.LogIndex(r.Context(), d.Name)
			if err == nil {
				rows[i].StateText = stateText(d, idx)
			}
		}
	}
	return rows, nil
}

// lastEnded reports whether d's state may read differently after the
// action that left it (see stateText).
func lastEnded(d api.Deployment) bool {
	return d.State.Is(api.StateFailed) && d.LastActionUUID != nil
}

// stateText is d's state as the CLI shows it: a failed state a cancelled
// action left reads cancelled(up); idx holds d's actions.
func stateText(d api.Deployment, idx api.LogIndex) string {
	if !lastEnded(d) {
		return d.State.String()
	}
	e, ok := idx[*d.LastActionUUID]
	if !ok || e.ErrorCode == nil {
		return d.State.String()
	}
	return d.State.TextAfter(*e.ErrorCode)
}

func (g *GUI) failed(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, api.ErrNotFound) {
		status = http.StatusNotFound
	}
	g.opts.Logger.Warn("gui: page failed", "err", err)
	g.render(w, status, "deployments", page{Title: "Error", Error: err.Error()})
}

func (g *GUI) deployments(w http.ResponseWriter, r *http.Request) {
	list, err := g.list(r)
	if err != nil {
		g.failed(w, err)
		return
	}
	g.render(w, http.StatusOK, "deployments", g.page("Deployments", "deployments", list))
}

// action is one row of the past actions table.
type action struct {
	UUID string
	api.LogEntry
}

// guestRow is one row of the guests table, from state.json; the guests
// route fills status and resource use in the browser.
type guestRow struct {
	Name, Kind, Host string
	IPs              []string
	Switches         []string
	Color            string
	// Snapshots: the guest's kind has snapshots (libvirt).
	Snapshots bool
}

// lazyPlots is the number of guests above which their plots load lazily.
const lazyPlots = 30

type deploymentData struct {
	Dep       api.Deployment
	StateKind string
	// StateText is the state as the CLI shows it (see stateText).
	StateText string
	Running   string // uuid of the running action
	// Last is the newest past action, whose log the page opens with when
	// none is running; LastCommand names it.
	Last, LastCommand string
	HasState          bool
	StateError        string
	Topology          template.HTML
	Guests            []guestRow
	// Lazy: many guests, so plots load only when scrolled to.
	Lazy    bool
	Hosts   []hostColor
	Actions []action
}

func (g *GUI) deployment(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !api.ValidName(name) {
		g.failed(w, api.Categorized(api.ErrNotFound, "no deployment "+name))
		return
	}
	dep, err := g.opts.Records.Deployment(r.Context(), name)
	if err != nil {
		g.failed(w, err)
		return
	}
	data := deploymentData{Dep: dep, StateKind: string(stateKind(dep.State)), StateText: dep.State.String()}
	if dep.State.Is(api.StateRunning) && dep.LastActionUUID != nil {
		data.Running = *dep.LastActionUUID
	}
	st, err := topology.ReadProjectState(dep.ProjectLocation)
	switch {
	case err == nil:
		data.HasState = true
		data.Topology = drawTopology(st)
		data.Hosts = hostColors(st)
		colors := map[string]string{}
		for _, h := range data.Hosts {
			colors[h.Name] = h.Color
		}
		for _, gu := range st.Guests {
			row := guestRow{Name: gu.Name, Kind: gu.Kind, Host: gu.Host, Color: colors[gu.Host], Snapshots: gu.Kind == topology.KindLibvirt}
			for _, in := range gu.Interfaces {
				ip := in.Address
				if ip == "" {
					ip = "dynamic"
				}
				row.IPs = append(row.IPs, in.Name+" "+ip)
				row.Switches = append(row.Switches, in.Switch)
			}
			data.Guests = append(data.Guests, row)
		}
	default:
		data.StateError = "no topology yet: press Generate (generate-artefacts)"
		if !errors.Is(err, fs.ErrNotExist) {
			data.StateError = err.Error()
		}
	}
	data.Lazy = len(data.Guests) > lazyPlots
	idx, err := g.opts.Records.LogIndex(r.Context(), name)
	if err == nil {
		data.StateText = stateText(dep, idx)
		for id, e := range idx {
			data.Actions = append(data.Actions, action{UUID: id, LogEntry: e})
		}
		sort.Slice(data.Actions, func(i, j int) bool {
			return data.Actions[i].ExecutionTime.After(data.Actions[j].ExecutionTime)
		})
		if len(data.Actions) > 50 {
			data.Actions = data.Actions[:50]
		}
		if len(data.Actions) > 0 {
			data.Last, data.LastCommand = data.Actions[0].UUID, string(data.Actions[0].Command.Name)
		}
	}
	g.render(w, http.StatusOK, "deployment", g.page(dep.Name, "deployments", data))
}
