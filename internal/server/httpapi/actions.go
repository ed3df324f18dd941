package httpapi

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/testbedos/testbedos/internal/api"
)

// listActions answers GET /api/deployments/{name}/actions?limit=N&offset=M:
// the deployment's actions from its logs index, newest first, one page.
func listActions(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		limit, err := queryInt(r, "limit", api.DefaultActionsLimit, 1, api.MaxActionsLimit)
		if err != nil {
			return err
		}
		offset, err := queryInt(r, "offset", 0, 0, 1<<30)
		if err != nil {
			return err
		}
		name := r.PathValue("name")
		if _, err := d.Store.Deployment(r.Context(), name); err != nil {
			return err
		}
		idx, err := d.Store.LogIndex(r.Context(), name)
		if err != nil {
			return err
		}
		all := make([]api.ActionSummary, 0, len(idx))
		for id, e := range idx {
			all = append(all, e.Summary(id))
		}
		sort.Slice(all, func(i, j int) bool {
			if !all[i].Started.Equal(all[j].Started) {
				return all[i].Started.After(all[j].Started)
			}
			return all[i].UUID > all[j].UUID
		})
		page := api.ActionPage{Actions: []api.ActionSummary{}, Total: len(all)}
		if offset < len(all) {
			end := min(offset+limit, len(all))
			page.Actions = all[offset:end]
			if end < len(all) {
				page.Next = &end
			}
		}
		writeJSON(w, http.StatusOK, page)
		return nil
	}
}

// queryInt reads the integer query parameter key, def when absent; a value
// outside lo..hi is a 400.
func queryInt(r *http.Request, key string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, nil, fmt.Sprintf("%s=%q: give a whole number from %d to %d", key, s, lo, hi))
	}
	return n, nil
}
