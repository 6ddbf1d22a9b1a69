package ase_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Mux reader and every connection ends with its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
