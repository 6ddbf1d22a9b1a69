package storetest_test

import (
	"testing"

	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/services/polaris/store/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Stores {
		return storetest.Stores{Registry: registry.NewMemStore(), Config: config.NewMemStore(), Resources: resource.NewMemStore()}
	})
}
