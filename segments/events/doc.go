// Package events records what personalization did, for measuring it: one
// exposure event per slot of a personalized page (variant block, holdout or
// default) and one conversion event per behavior event marked as a
// conversion. Events are JSON lines written by zerolog to a sink (a file with
// size-based rotation, stdout or stderr) through a bounded queue: writing
// never blocks a request; when the queue is full, events are dropped and
// counted.
//
// The report subcommand reads these files back (see Report).
package events
