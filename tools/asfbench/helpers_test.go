package asfbench

import (
	"encoding/base64"
	"math"
)

func mathPow(b, e float64) float64 { return math.Pow(b, e) }

func base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}
