package main

import (
	"context"
	"errors"
)

func (m *Main) runValidate(ctx context.Context, args []string) error {
	return errors.New("validate: not implemented yet")
}

func (m *Main) runExplain(ctx context.Context, args []string) error {
	return errors.New("explain: not implemented yet")
}

func (m *Main) runPreviewToken(ctx context.Context, args []string) error {
	return errors.New("preview-token: not implemented yet")
}

func (m *Main) runReport(ctx context.Context, args []string) error {
	return errors.New("report: not implemented yet")
}
