package bench_test

import (
	"testing"

	"github.com/xleaf/xleaf/test/netns"
)

func TestMain(m *testing.M) { netns.Main(m) }
