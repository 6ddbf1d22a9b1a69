package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/athenaserving/asf/services/polaris/store/bolt"
	"github.com/athenaserving/asf/services/polaris/store/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string) storetest.Stores {
	t.Helper()
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = st.Close()
		}
	})
	return storetest.Stores{Registry: st, Config: st, Resources: st, Reopen: func(t *testing.T) storetest.Stores {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		closed = true
		return open(t, path)
	}}
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		return open(t, filepath.Join(t.TempDir(), "sub", bolt.FileName))
	})
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), bolt.FileName)
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := bolt.Open(path); err == nil {
		t.Fatal("second open of a held file succeeded")
	} else {
		t.Log(err)
	}
}
