package gate

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCapabilityLabelIsBounded(t *testing.T) {
	m := newMetrics(nil, 2)
	m.admit([]string{"ist"})
	assert.Equal(t, "ist", m.Label("ist", 10110, false))
	assert.Equal(t, "unknown", m.Label("x", 10163, false), "unproven capabilities are not labels")
	assert.Equal(t, "tts", m.Label("tts", 0, false))
	assert.Equal(t, "other", m.Label("ocr", 0, false))
	assert.Equal(t, "unknown", m.Label("tts", 10404, false))
}
