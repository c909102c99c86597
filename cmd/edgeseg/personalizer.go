package main

import (
	"context"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/proxy"
)

// newPersonalizer wires the personalization packages from cfg.
func (m *Main) newPersonalizer(ctx context.Context, cfg *config.Config, log *zerolog.Logger, set *metrics.Set) (*proxy.Personalizer, error) {
	return nil, nil
}
