package config

import (
	"os"
	"reflect"
	"testing"
)

type reflectVal = reflect.Value

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
