module github.com/athenaserving/asf/tests

go 1.26

require (
	github.com/athenaserving/asf/libs v0.0.0
	github.com/athenaserving/asf/services/atom v0.0.0
	github.com/athenaserving/asf/services/lbclient v0.0.0
	github.com/athenaserving/asf/services/loader v0.0.0
	github.com/athenaserving/asf/services/polaris v0.0.0
	github.com/athenaserving/asf/services/webgate v0.0.0
)

replace (
	github.com/athenaserving/asf/libs => ../libs
	github.com/athenaserving/asf/services/atom => ../services/atom
	github.com/athenaserving/asf/services/lbclient => ../services/lbclient
	github.com/athenaserving/asf/services/loader => ../services/loader
	github.com/athenaserving/asf/services/polaris => ../services/polaris
	github.com/athenaserving/asf/services/webgate => ../services/webgate
)
