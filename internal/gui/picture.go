package gui

import "github.com/testbedos/testbedos/internal/topology"

// TopologySVG is the deployment page's topology picture as a standalone
// SVG document: GET …/graph?format=svg serves the same drawing.
func TopologySVG(st *topology.State) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + string(drawTopology(st)) + "\n")
}
