// Command kafkatrial puts Kafka durability settings on trial. This package holds cobra commands only: each
// parses its flags, calls one package function, and maps errors to the exit codes of contract.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes (contract.md).
const (
	exitOK        = 0 // every claim held
	exitViolated  = 1 // a guarantee was violated
	exitUsage     = 2 // bad usage or a bad scenario
	exitCannotRun = 3 // the trial could not run
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

var version = "dev"

var rootCmd = &cobra.Command{
	Use:           "kafkatrial",
	Short:         "Put Kafka durability settings on trial: faults, real clients, and a checker that says what was lost",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:     "version",
		Short:   "Print the kafkatrial version",
		Example: "  kafkatrial version",
		Args:    cobra.NoArgs,
		Run:     func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "kafkatrial", version) },
	})
}

func main() {
	os.Exit(execute(os.Args[1:]))
}

// execute runs the CLI with args and returns the process exit code.
func execute(args []string) int {
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "kafkatrial:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra's own errors (unknown flag, wrong argument count) are usage errors.
	return exitUsage
}
