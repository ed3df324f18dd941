package ovn

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// Chassis is a row of the southbound Chassis table.
type Chassis struct {
	UUID string `ovsdb:"_uuid"`
	Name string `ovsdb:"name"`
}

// ChassisPrivate is a row of Chassis_Private.
type ChassisPrivate struct {
	UUID string `ovsdb:"_uuid"`
	Name string `ovsdb:"name"`
}

// sbTables is the part of OVN_Southbound this package uses.
var sbTables = dbTables{"OVN_Southbound", map[string]model.Model{
	"Chassis":         &Chassis{},
	"Chassis_Private": &ChassisPrivate{},
}}

// DeleteChassis removes the chassis called name from the southbound
// database, as its ovn-controller does when it leaves: a member removed
// from the cluster that did not (it was killed, or is unreachable). A
// missing one is fine.
func (n *Network) DeleteChassis(ctx context.Context, name string) error {
	if n.nb == nil {
		return errors.New("ovn: this host does not hold the southbound database")
	}
	sb, err := connect(ctx, sbTables, n.ep.SB)
	if err != nil {
		return err
	}
	defer sb.Close()
	var ops []ovsdb.Operation
	for _, del := range []func() ([]ovsdb.Operation, error){
		sb.WhereCache(func(c *Chassis) bool { return c.Name == name }).Delete,
		sb.WhereCache(func(c *ChassisPrivate) bool { return c.Name == name }).Delete,
	} {
		o, err := del()
		if err != nil {
			return err
		}
		ops = append(ops, o...)
	}
	if _, err := transact(ctx, sb, ops...); err != nil {
		return fmt.Errorf("delete chassis %s: %w", name, err)
	}
	return nil
}
