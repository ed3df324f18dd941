package ovn

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// connect opens an OVSDB client of dbModel on endpoint and mirrors the
// whole database into its cache (the databases are small: one host's, and
// the logical network of its labs). It retries until ctx ends, so a
// database server that is still starting is waited for.
func connect(ctx context.Context, db dbTables, endpoint string) (client.Client, error) {
	dbModel, err := model.NewClientDBModel(db.name, db.tables)
	if err != nil {
		return nil, err
	}
	discard := logr.Discard()
	var last error
	for {
		c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithLogger(&discard),
			client.WithReconnect(5*time.Second, nil))
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = c.Connect(cctx)
		if err == nil {
			_, err = c.Monitor(cctx, monitorOf(c, db))
		}
		cancel()
		if err == nil {
			return c, nil
		}
		c.Close()
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s %s: %w", dbModel.Name(), endpoint, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// monitorOf monitors every table of dbModel, only the columns its structs
// have (a monitor of all columns would send the cache columns it cannot
// hold, and it drops such updates).
func monitorOf(c client.Client, db dbTables) *client.Monitor {
	m := c.NewMonitor()
	for table, row := range db.tables {
		t := reflect.TypeOf(row).Elem()
		var cols []string
		for i := range t.NumField() {
			if col := t.Field(i).Tag.Get("ovsdb"); col != "" && col != "_uuid" {
				cols = append(cols, col)
			}
		}
		m.Tables = append(m.Tables, client.TableMonitor{Table: table, Fields: cols})
	}
	return m
}

// transact runs ops as one transaction and returns the first error of any
// operation.
func transact(ctx context.Context, c client.Client, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return nil, err
	}
	return res, nil
}

// owned is the external_ids of a row that object of deployment dep owns.
func owned(dep, object string) map[string]string {
	return map[string]string{KeyDeployment: dep, KeyObject: object}
}

// ownedBy reports whether ids mark a row of object.
func ownedBy(ids map[string]string, object string) bool { return ids[KeyObject] == object }

// waitFor polls the cache until ok holds or ctx ends.
func waitFor(ctx context.Context, what string, ok func() bool) error {
	for !ok() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
