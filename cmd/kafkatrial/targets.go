package main

// The targets a trial can run against register themselves with the scenarios package.
import (
	_ "github.com/kafkatrial/kafkatrial/target/builtin"
	_ "github.com/kafkatrial/kafkatrial/target/docker"
	_ "github.com/kafkatrial/kafkatrial/target/external"
)
