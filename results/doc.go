// Package results owns the run directory: verdict files, HTML/Markdown/JUnit reports, plots, offline re-check
// and comparison of runs.
package results
