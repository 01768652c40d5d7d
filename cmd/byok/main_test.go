package main

import (
	"testing"

	"github.com/openbyok/byok/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
