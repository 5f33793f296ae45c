//go:build !plantedbugs

package broker

// plantedBug is always empty outside the test-only `plantedbugs` build, so every planted-bug branch is dead
// code the compiler removes: no setting and no input can reach it.
const plantedBug = ""

// PlantedBugsCompiled reports whether this binary was built with the test-only planted replication bugs.
const PlantedBugsCompiled = false
