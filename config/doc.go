// Package config holds edgeseg's one typed configuration.
//
// A configuration is read in four steps that never touch global state:
//
//  1. Load parses a YAML file into a Config that starts from Default(), so every
//     key the file leaves out keeps its documented default. Unknown keys are
//     errors, reported with the file and line.
//  2. ApplyEnv overrides leaf keys from EDGESEG_* environment variables
//     (origin.url ← EDGESEG_ORIGIN_URL).
//  3. Validate reports every problem at once; each problem names its key, and
//     the line in the file where the key was written.
//  4. The caller wires the result into the other packages. Reloads build a new
//     Config the same way and swap it in whole.
//
// examples/edgeseg.yaml documents every key with its default; the tests load it.
package config
