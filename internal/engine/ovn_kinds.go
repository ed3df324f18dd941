package engine

// ovnKinds is the ovn backend's kinds in the order up makes them.
func ovnKinds() []kind {
	return []kind{guestKind{}}
}
