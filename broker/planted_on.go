//go:build plantedbugs

package broker

import "os"

// plantedBug names one deliberate replication bug, compiled in only with `go test -tags plantedbugs` and chosen
// with KAFKATRIAL_PLANTED_BUG. It exists to prove the harness catches a broken broker: a guarantee row of the
// claims suite must fail when one is active.
//
//	ack-before-replication   acks=all is answered as soon as the leader appended, before the ISR has the data
var plantedBug = os.Getenv("KAFKATRIAL_PLANTED_BUG")

// PlantedBugsCompiled reports whether this binary was built with the test-only planted replication bugs.
const PlantedBugsCompiled = true
