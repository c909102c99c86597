package main

import (
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/rs/zerolog"
)

// memoryLimitRatio is the share of a container's memory limit given to
// the Go heap's soft limit, leaving room for stacks, buffers outside the
// heap and the kernel's socket memory.
const memoryLimitRatio = 0.8

// setMemoryLimit gives the Go runtime a soft memory limit of 80% of the
// container's (cgroup) limit, unless GOMEMLIMIT is set or AUTOMEMLIMIT=off:
// without one the heap grows to twice what is live before a collection,
// which a container's limit may not allow under load.
func setMemoryLimit(log *zerolog.Logger) {
	limit, err := memlimit.Set(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case err != nil:
		log.Debug().Err(err).Msg("no container memory limit found; the Go runtime's defaults apply")
	case limit > 0 && limit < math.MaxInt64:
		log.Info().Int64("bytes", limit).Msg("Go memory limit set (80% of the container's, or GOMEMLIMIT)")
	}
}
