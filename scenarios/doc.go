// Package scenarios owns the scenario format, the bundled scenario library, the runner, suites and the matrix.
package scenarios
